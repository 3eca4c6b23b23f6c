/* C tests of the node-lifecycle ABI, compiled against the committed header and linked against
 * the static library. Run by `make test` under valgrind (0 errors, 0 leaks required).
 * Plays the four scenarios, every bad input the ABI must survive, and four threads sharing one
 * fleet. */
#define _POSIX_C_SOURCE 200809L
#include "node_lifecycle.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed = 0, failed = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (cond) {                                                                      \
      passed++;                                                                      \
    } else {                                                                         \
      failed++;                                                                      \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                                \
  } while (0)

/* A string literal as pointer + length. */
#define S(lit) (const uint8_t *)(lit), strlen(lit)

static const int64_t T0 = 1767225600000; /* 2026-01-01 */
static const uint64_t MIN = 60000;

static nl_fleet *new_fleet(void) {
  nl_options *opts = NULL;
  nl_fleet *fleet = NULL;
  CHECK(nl_options_new(&opts, NULL) == NL_RESULT_OK);
  CHECK(nl_options_use_manual_clock(opts, T0, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_new(opts, &fleet, NULL) == NL_RESULT_OK);
  nl_options_free(opts);
  return fleet;
}

static nl_node_spec spec(const char *id, uint32_t origin, uint64_t ram) {
  nl_node_spec s;
  memset(&s, 0, sizeof s);
  s.id = (const uint8_t *)id;
  s.id_len = strlen(id);
  s.origin = origin;
  s.total_ram_mb = ram;
  s.initial_state = -1;
  return s;
}

static void cloud_ready(nl_fleet *f, const char *id) {
  nl_node_spec s = spec(id, NL_ORIGIN_CLOUD, 8192);
  CHECK(nl_fleet_register(f, &s, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_transition(f, S(id), NL_STATE_INITIALIZING, S("cloud_init_started"), NULL, NULL) ==
        NL_RESULT_OK);
  CHECK(nl_fleet_transition(f, S(id), NL_STATE_READY, S("cloud_init_completed"), NULL, NULL) ==
        NL_RESULT_OK);
}

/* Whether a JSON buffer contains `needle`; frees the buffer. */
static int bytes_contain(nl_bytes *b, const char *needle) {
  size_t len = nl_bytes_len(b);
  char *text = malloc(len + 1);
  memcpy(text, nl_bytes_data(b), len);
  text[len] = 0;
  int found = strstr(text, needle) != NULL;
  free(text);
  nl_bytes_free(b);
  return found;
}

/* Whether the JSON audit trail of `node` contains `needle`. */
static int audit_contains(nl_fleet *f, const char *node, const char *needle) {
  nl_bytes *b = NULL;
  if (nl_fleet_audit_query(f, NL_AUDIT_FILTER_NODE, S(node), 0, 100, &b, NULL) != NL_RESULT_OK) return 0;
  return bytes_contain(b, needle);
}

static void scenario_1(void) {
  nl_fleet *f = new_fleet();
  cloud_ready(f, "cloud-1");
  nl_container_outcome o;
  CHECK(nl_fleet_add_container(f, S("cloud-1"), S("mc-1"), 2048, &o, NULL) == NL_RESULT_OK);
  CHECK(o.changed && o.state == NL_STATE_ACTIVE && o.current_containers == 1);
  CHECK(nl_fleet_remove_container(f, S("cloud-1"), S("mc-1"), &o, NULL) == NL_RESULT_OK);
  CHECK(o.state == NL_STATE_IDLE);
  CHECK(nl_fleet_advance_clock_ms(f, 30 * MIN, NULL) == NL_RESULT_OK);
  uint64_t ticket = 0;
  CHECK(nl_fleet_begin_decommission(f, S("cloud-1"), S("reactive_policy"), &ticket, NULL) == NL_RESULT_OK);
  CHECK(ticket > 0);
  CHECK(nl_fleet_complete_decommission(f, ticket, NULL) == NL_RESULT_OK);
  nl_verdict v;
  CHECK(nl_fleet_evaluate(f, S("cloud-1"), &v, NULL) == NL_RESULT_OK);
  CHECK(!v.allowed && v.state == NL_STATE_DECOMMISSIONED && v.primary_reason == NL_REASON_ALREADY_DECOMMISSIONED);
  CHECK(audit_contains(f, "cloud-1", "\"action\":\"node_decommission\",\"node_id\":\"cloud-1\""));
  CHECK(audit_contains(f, "cloud-1", "\"result\":\"success\""));
  nl_fleet_free(f);
}

static void scenario_2(void) {
  nl_fleet *f = new_fleet();
  cloud_ready(f, "young");
  uint64_t ticket = 777;
  nl_error *err = NULL;
  nl_result r = nl_fleet_begin_decommission(f, S("young"), S("reactive_policy"), &ticket, &err);
  CHECK(r == NL_RESULT_READY_TOO_YOUNG);
  CHECK(ticket == 777); /* outputs are written only on success */
  CHECK(nl_error_code(err) == NL_RESULT_READY_TOO_YOUNG);
  CHECK(strstr(nl_error_message(err), "ready node too young") != NULL);
  nl_verdict v;
  CHECK(nl_error_verdict(err, &v) == NL_RESULT_OK);
  CHECK(v.has_retry_after && v.retry_after_ms == T0 + (int64_t)(30 * MIN));
  CHECK(v.reasons_mask == (1u << (NL_REASON_READY_TOO_YOUNG - 100)));
  nl_error_free(err);
  CHECK(audit_contains(f, "young", "\"result\":\"rejected\""));
  CHECK(audit_contains(f, "young", "\"reason_code\":106"));
  nl_fleet_free(f);
}

static void scenario_3(void) {
  nl_fleet *f = new_fleet();
  cloud_ready(f, "busy");
  CHECK(nl_fleet_add_container(f, S("busy"), S("a"), 1024, NULL, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_add_container(f, S("busy"), S("b"), 1024, NULL, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_advance_clock_ms(f, 120 * MIN, NULL) == NL_RESULT_OK);
  uint64_t ticket;
  nl_error *err = NULL;
  CHECK(nl_fleet_begin_decommission(f, S("busy"), S("consolidation_policy"), &ticket, &err) ==
        NL_RESULT_HAS_CONTAINERS);
  CHECK(strstr(nl_error_message(err), "node has 2 containers") != NULL);
  nl_error_free(err);
  CHECK(audit_contains(f, "busy", "node has 2 containers"));
  nl_fleet_free(f);
}

static void scenario_4(void) {
  nl_fleet *f = new_fleet();
  const char *ids[] = {"local-node", "proxy-node"};
  for (int i = 0; i < 2; i++) {
    nl_node_spec s = spec(ids[i], NL_ORIGIN_SYSTEM, 0);
    CHECK(nl_fleet_register(f, &s, NULL) == NL_RESULT_OK);
    uint64_t ticket;
    CHECK(nl_fleet_begin_decommission(f, S(ids[i]), S("manual"), &ticket, NULL) == NL_RESULT_SYSTEM_NODE);
    CHECK(audit_contains(f, ids[i], "cannot decommission system node"));
  }
  nl_fleet_free(f);
}

static void bad_inputs(void) {
  nl_fleet *f = new_fleet();
  cloud_ready(f, "n1");
  nl_error *err = NULL;
  uint64_t ticket;
  nl_verdict v;

  /* NULL pointers */
  CHECK(nl_fleet_evaluate(NULL, S("n1"), &v, &err) == NL_RESULT_NULL_ARGUMENT);
  CHECK(strstr(nl_error_message(err), "fleet must not be NULL") != NULL);
  nl_error_free(err);
  CHECK(nl_fleet_evaluate(f, NULL, 3, &v, NULL) == NL_RESULT_NULL_ARGUMENT);
  CHECK(nl_fleet_evaluate(f, S("n1"), NULL, NULL) == NL_RESULT_NULL_ARGUMENT);
  CHECK(nl_fleet_register(f, NULL, NULL) == NL_RESULT_NULL_ARGUMENT);
  CHECK(nl_fleet_new(NULL, NULL, NULL) == NL_RESULT_NULL_ARGUMENT);
  CHECK(nl_error_code(NULL) == NL_RESULT_NULL_ARGUMENT);
  CHECK(strcmp(nl_error_message(NULL), "") == 0);
  CHECK(nl_bytes_len(NULL) == 0 && nl_bytes_data(NULL) == NULL);
  nl_error_free(NULL);
  nl_bytes_free(NULL);
  nl_options_free(NULL);
  nl_fleet_free(NULL);

  /* Invalid UTF-8 and overflowing lengths */
  const uint8_t bad[] = {0xff, 0xfe, 0x00};
  CHECK(nl_fleet_evaluate(f, bad, 2, &v, &err) == NL_RESULT_INVALID_UTF8);
  CHECK(nl_error_code(err) == NL_RESULT_INVALID_UTF8);
  nl_error_free(err);
  CHECK(nl_fleet_evaluate(f, bad, SIZE_MAX, &v, NULL) == NL_RESULT_INVALID_ARGUMENT);

  /* Unknown enum values */
  CHECK(nl_fleet_transition(f, S("n1"), 99, S("x"), NULL, NULL) == NL_RESULT_UNKNOWN_ENUM);
  nl_node_spec s = spec("n2", 42, 0);
  CHECK(nl_fleet_register(f, &s, NULL) == NL_RESULT_UNKNOWN_ENUM);
  CHECK(nl_fleet_audit_query(f, 9, NULL, 0, 0, 10, &(nl_bytes *){NULL}, NULL) == NL_RESULT_UNKNOWN_ENUM);
  nl_options *opts = NULL;
  CHECK(nl_options_new(&opts, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(opts, 77, 1, NULL) == NL_RESULT_UNKNOWN_ENUM);
  CHECK(nl_options_set(opts, NL_OPTION_AUDIT_CAPACITY, 0, NULL) == NL_RESULT_OK);
  nl_fleet *bad_fleet = NULL;
  CHECK(nl_fleet_new(opts, &bad_fleet, NULL) == NL_RESULT_INVALID_ARGUMENT);
  CHECK(bad_fleet == NULL);
  nl_options_free(opts);
  CHECK(nl_options_from_json(S("{\"policy\":{\"idle_grace\":1}}"), &opts, &err) == NL_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(nl_error_message(err), "unknown field") != NULL);
  nl_error_free(err);

  /* Invalid transition and unknown node change nothing */
  CHECK(nl_fleet_transition(f, S("n1"), NL_STATE_PROVISIONING, S("x"), NULL, NULL) == NL_RESULT_INVALID_TRANSITION);
  CHECK(nl_fleet_evaluate(f, S("ghost"), &v, NULL) == NL_RESULT_NODE_NOT_FOUND);
  CHECK(nl_fleet_begin_decommission(f, S("n1"), S(""), &ticket, NULL) == NL_RESULT_INVALID_ARGUMENT);

  /* A ticket used twice */
  CHECK(nl_fleet_advance_clock_ms(f, 31 * MIN, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_begin_decommission(f, S("n1"), S("manual"), &ticket, NULL) == NL_RESULT_OK);
  uint32_t state = 0;
  CHECK(nl_fleet_cancel_decommission(f, ticket, S("changed my mind"), &state, NULL) == NL_RESULT_OK);
  CHECK(state == NL_STATE_READY);
  CHECK(nl_fleet_complete_decommission(f, ticket, NULL) == NL_RESULT_TICKET_INVALID);
  CHECK(nl_fleet_cancel_decommission(f, ticket, S("again"), NULL, NULL) == NL_RESULT_TICKET_INVALID);

  /* A manual-clock call on a wall-clock fleet */
  nl_fleet *wall = NULL;
  CHECK(nl_fleet_new(NULL, &wall, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_advance_clock_ms(wall, 1, NULL) == NL_RESULT_NOT_MANUAL_CLOCK);
  nl_fleet_free(wall);

  /* Calls after free are detected, and a second free is a no-op */
  nl_fleet_free(f);
  CHECK(nl_fleet_evaluate(f, S("n1"), &v, &err) == NL_RESULT_USE_AFTER_FREE);
  CHECK(strstr(nl_error_message(err), "already freed") != NULL);
  nl_error_free(err);
  nl_fleet_free(f);

  CHECK(strcmp(nl_result_name(NL_RESULT_HAS_HOLDS), "NL_RESULT_HAS_HOLDS") == 0);
  CHECK(nl_result_name(55) == NULL);
  CHECK(strcmp(nl_version(), NL_VERSION) == 0);
}

static void planning(void) {
  nl_fleet *f = new_fleet();
  cloud_ready(f, "a");
  cloud_ready(f, "b");
  CHECK(nl_fleet_add_container(f, S("a"), S("ca"), 1024, NULL, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_add_container(f, S("b"), S("cb"), 1024, NULL, NULL) == NL_RESULT_OK);
  nl_node_spec s = spec("booting", NL_ORIGIN_CLOUD, 4096);
  CHECK(nl_fleet_register(f, &s, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_advance_clock_ms(f, 60 * MIN, NULL) == NL_RESULT_OK);

  /* The flat batch paths. */
  nl_verdict_list *vl = NULL;
  CHECK(nl_fleet_evaluate_all(f, &vl, NULL) == NL_RESULT_OK);
  size_t count = 0, ids_len = 0;
  const nl_node_verdict *items = nl_verdict_list_items(vl, &count);
  const uint8_t *ids = nl_verdict_list_ids(vl, &ids_len);
  CHECK(count == 3 && ids_len == strlen("abbooting"));
  CHECK(items[2].id.len == 7 && memcmp(ids + items[2].id.offset, "booting", 7) == 0);
  CHECK(!items[2].verdict.allowed && items[2].verdict.primary_reason == NL_REASON_STILL_STARTING);
  CHECK(items[0].verdict.primary_reason == NL_REASON_HAS_CONTAINERS);
  nl_verdict_list_free(vl);
  CHECK(nl_verdict_list_items(NULL, &count) == NULL && count == 0);
  nl_verdict_list_free(NULL);

  nl_audit_list *al = NULL;
  CHECK(nl_fleet_audit_query_list(f, NL_AUDIT_FILTER_NODE, S("a"), 0, 100, &al, NULL) == NL_RESULT_OK);
  size_t strings_len = 0;
  const nl_audit_item *entries = nl_audit_list_items(al, &count);
  const uint8_t *strings = nl_audit_list_strings(al, &strings_len);
  CHECK(count == 4); /* provision, initializing, ready, active */
  CHECK(entries[0].action == NL_AUDIT_ACTION_NODE_PROVISION && entries[0].has_snapshot);
  CHECK(entries[3].from_state == NL_STATE_READY && entries[3].to_state == NL_STATE_ACTIVE);
  CHECK(entries[3].snapshot.current_containers == 1 && entries[3].container_id.len == 0);
  CHECK(memcmp(strings + entries[3].reason.offset, "first_container_added", entries[3].reason.len) == 0);
  nl_audit_list_free(al);
  uint64_t missed = 9, next = 0;
  CHECK(nl_fleet_audit_since_list(f, 0, 2, &al, &missed, &next, NULL) == NL_RESULT_OK);
  CHECK(missed == 0 && next == 2);
  nl_audit_list_free(al);
  CHECK(nl_fleet_audit_query_list(f, 42, NULL, 0, 0, 1, &al, NULL) == NL_RESULT_UNKNOWN_ENUM);

  nl_bytes *b = NULL;
  CHECK(nl_fleet_projection_json(f, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"coming\":{\"nodes\":1,\"total_ram_mb\":4096"));
  uint64_t needed = 99;
  CHECK(nl_fleet_additional_nodes_needed(f, 16384 + 4096 - 2048 + 1, 8192, &needed, NULL) == NL_RESULT_OK);
  CHECK(needed == 1);
  CHECK(nl_fleet_additional_nodes_needed(f, 1, 0, &needed, NULL) == NL_RESULT_INVALID_ARGUMENT);

  /* Equal nodes: the id decides, "a" goes and its container moves to "b". Savings are 0 so the
   * threshold is lowered to 0 for the test. */
  const char *req = "{\"policy\":{\"min_savings_eur_per_hour\":0}}";
  CHECK(nl_fleet_consolidation_plan_json(f, S(req), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"moves\":[{\"container_id\":\"ca\",\"ram_mb\":1024,\"from_node\":\"a\",\"to_node\":\"b\"}]"));
  CHECK(nl_fleet_consolidation_plan_json(f, NULL, 0, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"refusal\":\"savings_below_threshold\""));
  nl_error *err = NULL;
  CHECK(nl_fleet_consolidation_plan_json(f, S("{\"polcy\":{}}"), &b, &err) == NL_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(nl_error_message(err), "unknown field") != NULL);
  nl_error_free(err);

  CHECK(nl_fleet_record_migration(f, S("ca"), S("a"), S("b"), S("consolidation_policy"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_record_migration(f, S("ca"), S("a"), S("b"), S("consolidation_policy"), NULL) == NL_RESULT_INVALID_ARGUMENT);
  CHECK(nl_fleet_record_migration(f, S("cb"), S("b"), S("booting"), S("x"), NULL) == NL_RESULT_NOT_SCHEDULABLE);
  CHECK(nl_fleet_audit_query(f, NL_AUDIT_FILTER_ACTION, NULL, 0, NL_AUDIT_ACTION_CONTAINER_MIGRATE, 10, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"reason\":\"moved to b\""));
  nl_fleet_free(f);
}

static void persistence(void) {
  char dir[] = "/tmp/nl-c-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  nl_options *opts = NULL;
  CHECK(nl_options_new(&opts, NULL) == NL_RESULT_OK);
  CHECK(nl_options_use_manual_clock(opts, T0, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set_data_dir(opts, S(dir), NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(opts, NL_OPTION_SYNC_EVERY_WRITES, 8, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(opts, NL_OPTION_COMPACT_AFTER_RECORDS, 0, NULL) == NL_RESULT_INVALID_ARGUMENT);
  nl_fleet *f = NULL;
  CHECK(nl_fleet_new(opts, &f, NULL) == NL_RESULT_OK);
  cloud_ready(f, "persisted");
  CHECK(nl_fleet_sync(f, NULL) == NL_RESULT_OK);

  /* A second opener of the same directory is refused while the first holds it. */
  nl_fleet *second = NULL;
  nl_error *err = NULL;
  CHECK(nl_fleet_new(opts, &second, &err) == NL_RESULT_LOCKED);
  CHECK(second == NULL && strstr(nl_error_message(err), "in use") != NULL);
  nl_error_free(err);
  nl_fleet_free(f);

  CHECK(nl_fleet_new(opts, &f, NULL) == NL_RESULT_OK);
  nl_verdict v;
  CHECK(nl_fleet_evaluate(f, S("persisted"), &v, NULL) == NL_RESULT_OK);
  CHECK(v.state == NL_STATE_READY && (v.reasons_mask & (1u << (NL_REASON_CONTAINER_SYNC_PENDING - 100))));
  nl_bytes *b = NULL;
  CHECK(nl_fleet_storage_json(f, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"nodes_restored\":1"));
  CHECK(nl_fleet_compact(f, NULL) == NL_RESULT_OK);
  nl_fleet_free(f);
  nl_options_free(opts);

  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

/* ----- threads ---------------------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 300

struct worker {
  nl_fleet *fleet;
  int index;
  int begun;
  int reserved;
};

static void *work(void *arg) {
  struct worker *w = arg;
  char node[32], container[32];
  for (int i = 0; i < ROUNDS; i++) {
    snprintf(node, sizeof node, "shared-%d", i % 8);
    snprintf(container, sizeof container, "c-%d-%d", w->index, i);
    uint64_t ticket;
    switch ((i + w->index) % 4) {
      case 0:
        if (nl_fleet_reserve(w->fleet, S(node), S(container), 64, NULL, NULL) == NL_RESULT_OK) {
          w->reserved++;
          nl_fleet_release_reservation(w->fleet, S(node), S(container), NULL, NULL);
        }
        break;
      case 1:
        if (nl_fleet_begin_decommission(w->fleet, S(node), S("reactive_policy"), &ticket, NULL) == NL_RESULT_OK) {
          w->begun++;
          nl_fleet_cancel_decommission(w->fleet, ticket, S("test"), NULL, NULL);
        }
        break;
      case 2: {
        nl_verdict v;
        nl_fleet_evaluate(w->fleet, S(node), &v, NULL);
        break;
      }
      default: {
        nl_bytes *b = NULL;
        if (nl_fleet_audit_since(w->fleet, 0, 10, &b, NULL) == NL_RESULT_OK) nl_bytes_free(b);
        break;
      }
    }
  }
  return NULL;
}

static void threads(void) {
  nl_fleet *f = new_fleet();
  char node[32];
  for (int i = 0; i < 8; i++) {
    snprintf(node, sizeof node, "shared-%d", i);
    cloud_ready(f, node);
  }
  CHECK(nl_fleet_advance_clock_ms(f, 60 * MIN, NULL) == NL_RESULT_OK);
  pthread_t t[THREADS];
  struct worker w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (struct worker){.fleet = f, .index = i};
    CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
  }
  int begun = 0, reserved = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    begun += w[i].begun;
    reserved += w[i].reserved;
  }
  CHECK(begun > 0 && reserved > 0);
  /* Every node is back to ready and empty: nothing leaked between the protocol and placement. */
  for (int i = 0; i < 8; i++) {
    snprintf(node, sizeof node, "shared-%d", i);
    nl_verdict v;
    CHECK(nl_fleet_evaluate(f, S(node), &v, NULL) == NL_RESULT_OK);
    CHECK(v.state == NL_STATE_READY && v.allowed);
  }
  nl_fleet_free(f);
}

int main(void) {
  scenario_1();
  scenario_2();
  scenario_3();
  scenario_4();
  bad_inputs();
  planning();
  persistence();
  threads();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
