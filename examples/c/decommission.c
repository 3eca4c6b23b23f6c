/* The two-phase decommission protocol from C. Build and run: `make c-example`. */
#include "node_lifecycle.h"

#include <stdio.h>
#include <string.h>

#define S(lit) (const uint8_t *)(lit), strlen(lit)

/* Prints the error of a failed call and frees it. */
static int report(const char *what, nl_result r, nl_error *err) {
  printf("%-28s -> %s: %s\n", what, nl_result_name(r), nl_error_message(err));
  nl_error_free(err);
  return (int)r;
}

/* Stands in for the cloud provider's delete call. */
static int delete_vm(const char *id) {
  printf("%-28s -> provider deletes %s\n", "delete_vm", id);
  return 0;
}

int main(void) {
  nl_options *opts = NULL;
  nl_fleet *fleet = NULL;
  nl_error *err = NULL;
  nl_result r;

  nl_options_new(&opts, NULL);
  nl_options_use_manual_clock(opts, 1767225600000, NULL);
  r = nl_fleet_new(opts, &fleet, &err);
  nl_options_free(opts);
  if (r != NL_RESULT_OK) return report("nl_fleet_new", r, err);

  nl_node_spec spec = {.id = S("worker-1"), .origin = NL_ORIGIN_CLOUD, .total_ram_mb = 8192, .initial_state = -1};
  nl_fleet_register(fleet, &spec, NULL);
  nl_fleet_transition(fleet, S("worker-1"), NL_STATE_INITIALIZING, S("cloud_init_started"), NULL, NULL);
  nl_fleet_transition(fleet, S("worker-1"), NL_STATE_READY, S("cloud_init_completed"), NULL, NULL);

  /* Phase 1 on a fresh node: refused, with the reason and when to retry. */
  uint64_t ticket = 0;
  r = nl_fleet_begin_decommission(fleet, S("worker-1"), S("reactive_policy"), &ticket, &err);
  if (r != NL_RESULT_OK) {
    nl_verdict v;
    if (nl_error_verdict(err, &v) == NL_RESULT_OK && v.has_retry_after)
      printf("retry after %lld ms\n", (long long)(v.retry_after_ms - 1767225600000));
    report("begin_decommission (young)", r, err);
  }

  /* 30 minutes later the same call is allowed: the node is draining, placement is refused. */
  nl_fleet_advance_clock_ms(fleet, 30 * 60 * 1000, NULL);
  r = nl_fleet_begin_decommission(fleet, S("worker-1"), S("reactive_policy"), &ticket, &err);
  if (r != NL_RESULT_OK) return report("begin_decommission", r, err);
  printf("%-28s -> ticket %llu\n", "begin_decommission", (unsigned long long)ticket);
  r = nl_fleet_reserve(fleet, S("worker-1"), S("mc-1"), 1024, NULL, &err);
  report("reserve on draining node", r, err);

  /* Phase 2 and 3: delete at the provider, then complete (or fail and retry later). */
  if (delete_vm("worker-1") == 0)
    r = nl_fleet_complete_decommission(fleet, ticket, &err);
  else
    r = nl_fleet_fail_decommission(fleet, ticket, S("provider error"), &err);
  if (r != NL_RESULT_OK) return report("finish_decommission", r, err);

  nl_bytes *audit = NULL;
  nl_fleet_audit_query(fleet, NL_AUDIT_FILTER_ACTION, NULL, 0, NL_AUDIT_ACTION_NODE_DECOMMISSION, 10, &audit, NULL);
  printf("decommission audit: %.*s\n", (int)nl_bytes_len(audit), (const char *)nl_bytes_data(audit));
  nl_bytes_free(audit);
  nl_fleet_free(fleet);
  return 0;
}
