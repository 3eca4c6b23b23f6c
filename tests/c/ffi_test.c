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
  nl_ticket_id ticket;
  memset(&ticket, 0, sizeof ticket);
  CHECK(nl_fleet_begin_decommission(f, S("cloud-1"), S("reactive_policy"), &ticket, NULL) == NL_RESULT_OK);
  static const nl_ticket_id zero;
  CHECK(memcmp(&ticket, &zero, sizeof ticket) != 0);
  CHECK(nl_fleet_complete_decommission(f, S("cloud-1"), &ticket, NULL) == NL_RESULT_OK);
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
  nl_ticket_id ticket;
  memset(&ticket, 7, sizeof ticket);
  nl_error *err = NULL;
  nl_result r = nl_fleet_begin_decommission(f, S("young"), S("reactive_policy"), &ticket, &err);
  CHECK(r == NL_RESULT_READY_TOO_YOUNG);
  CHECK(ticket.bytes[0] == 7 && ticket.bytes[15] == 7); /* outputs are written only on success */
  CHECK(nl_error_code(err) == NL_RESULT_READY_TOO_YOUNG);
  CHECK(strstr(nl_error_message(err), "ready node too young") != NULL);
  nl_verdict v;
  CHECK(nl_error_verdict(err, &v) == NL_RESULT_OK);
  CHECK(v.has_retry_after && v.retry_after_ms == T0 + (int64_t)(30 * MIN));
  CHECK(v.reasons_mask == (1u << (NL_REASON_READY_TOO_YOUNG - 100)));
  nl_bytes *detail = NULL;
  CHECK(nl_error_detail_json(err, &detail) == NL_RESULT_OK);
  CHECK(bytes_contain(detail, "\"message\":\"ready node too young (0s since ready, wait 30m0s more)\""));
  CHECK(nl_error_free(err) == NL_RESULT_OK);
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
  nl_ticket_id ticket;
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
    nl_ticket_id ticket;
    CHECK(nl_fleet_begin_decommission(f, S(ids[i]), S("manual"), &ticket, NULL) == NL_RESULT_SYSTEM_NODE);
    CHECK(audit_contains(f, ids[i], "cannot decommission system node"));
  }
  nl_fleet_free(f);
}

static void bad_inputs(void) {
  nl_fleet *f = new_fleet();
  cloud_ready(f, "n1");
  nl_error *err = NULL;
  nl_ticket_id ticket;
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
  CHECK(nl_error_free(NULL) == NL_RESULT_OK);
  CHECK(nl_bytes_free(NULL) == NL_RESULT_OK);
  CHECK(nl_options_free(NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_free(NULL) == NL_RESULT_OK);
  CHECK(nl_verdict_list_free(NULL) == NL_RESULT_OK);
  CHECK(nl_audit_list_free(NULL) == NL_RESULT_OK);

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
  CHECK(nl_options_set(opts, NL_OPTION_AUDIT_CAPACITY, 20000000, NULL) == NL_RESULT_OK);
  nl_fleet *bad_fleet = NULL;
  CHECK(nl_fleet_new(opts, &bad_fleet, &err) == NL_RESULT_INVALID_SETTING);
  CHECK(bad_fleet == NULL && strstr(nl_error_message(err), "audit_capacity") != NULL);
  nl_bytes *detail = NULL;
  CHECK(nl_error_detail_json(err, &detail) == NL_RESULT_OK);
  CHECK(bytes_contain(detail, "\"field\":\"audit_capacity\""));
  nl_error_free(err);
  CHECK(nl_options_set(opts, NL_OPTION_AUDIT_CAPACITY, 0, NULL) == NL_RESULT_OK); /* the default */
  CHECK(nl_options_set(opts, NL_OPTION_IDLE_GRACE_MS, NL_OFF, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(opts, NL_OPTION_READY_GRACE_MS, 366ULL * 24 * 60 * MIN, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_new(opts, &bad_fleet, NULL) == NL_RESULT_INVALID_SETTING);
  CHECK(nl_options_free(opts) == NL_RESULT_OK);
  CHECK(nl_options_free(opts) == NL_RESULT_USE_AFTER_FREE); /* a double free is reported */
  CHECK(nl_options_from_json(S("{\"policy\":{\"idle_grace\":1}}"), &opts, &err) == NL_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(nl_error_message(err), "unknown field") != NULL);
  nl_error_free(err);

  /* Invalid transition and unknown node change nothing */
  CHECK(nl_fleet_transition(f, S("n1"), NL_STATE_PROVISIONING, S("x"), NULL, NULL) == NL_RESULT_INVALID_TRANSITION);
  CHECK(nl_fleet_evaluate(f, S("ghost"), &v, NULL) == NL_RESULT_NODE_NOT_FOUND);
  CHECK(nl_fleet_begin_decommission(f, S("n1"), S(""), &ticket, NULL) == NL_RESULT_INVALID_ARGUMENT);
  /* Draining is entered only through the protocol. */
  CHECK(nl_fleet_transition(f, S("n1"), NL_STATE_DRAINING, S("disk_full"), NULL, &err) == NL_RESULT_PROTOCOL_ONLY);
  CHECK(strstr(nl_error_message(err), "begin_decommission") != NULL);
  nl_error_free(err);

  /* A ticket used twice */
  CHECK(nl_fleet_advance_clock_ms(f, 31 * MIN, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_begin_decommission(f, S("n1"), S("manual"), &ticket, NULL) == NL_RESULT_OK);
  uint32_t state = 0;
  CHECK(nl_fleet_cancel_decommission(f, S("n1"), &ticket, S("changed my mind"), &state, NULL) == NL_RESULT_OK);
  CHECK(state == NL_STATE_READY);
  CHECK(nl_fleet_complete_decommission(f, S("n1"), &ticket, NULL) == NL_RESULT_TICKET_INVALID);
  CHECK(nl_fleet_cancel_decommission(f, S("n1"), &ticket, S("again"), NULL, NULL) == NL_RESULT_TICKET_INVALID);
  CHECK(nl_fleet_complete_decommission(f, S("n1"), NULL, NULL) == NL_RESULT_NULL_ARGUMENT);

  /* A manual-clock call on a wall-clock fleet */
  nl_fleet *wall = NULL;
  CHECK(nl_fleet_new(NULL, &wall, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_advance_clock_ms(wall, 1, NULL) == NL_RESULT_NOT_MANUAL_CLOCK);
  nl_fleet_free(wall);

  /* Calls after free are detected, and a second free is reported */
  CHECK(nl_fleet_free(f) == NL_RESULT_OK);
  CHECK(nl_fleet_evaluate(f, S("n1"), &v, &err) == NL_RESULT_USE_AFTER_FREE);
  CHECK(strstr(nl_error_message(err), "already freed") != NULL);
  CHECK(nl_error_free(err) == NL_RESULT_OK);
  CHECK(nl_fleet_free(f) == NL_RESULT_USE_AFTER_FREE);
  /* ... and so is a second free of anything else the library hands out, and its use. */
  CHECK(nl_error_free(err) == NL_RESULT_USE_AFTER_FREE);
  CHECK(nl_error_code(err) == NL_RESULT_USE_AFTER_FREE);
  CHECK(strcmp(nl_error_message(err), "") == 0);
  nl_bytes *b = NULL;
  nl_fleet *g = new_fleet();
  CHECK(nl_fleet_policy_json(g, &b, NULL) == NL_RESULT_OK);
  CHECK(nl_bytes_free(b) == NL_RESULT_OK);
  CHECK(nl_bytes_free(b) == NL_RESULT_USE_AFTER_FREE);
  CHECK(nl_bytes_len(b) == 0 && nl_bytes_data(b) == NULL);
  nl_verdict_list *vl = NULL;
  CHECK(nl_fleet_evaluate_all(g, &vl, NULL) == NL_RESULT_OK);
  CHECK(nl_verdict_list_free(vl) == NL_RESULT_OK);
  CHECK(nl_verdict_list_free(vl) == NL_RESULT_USE_AFTER_FREE);
  nl_audit_list *al = NULL;
  CHECK(nl_fleet_audit_query_list(g, NL_AUDIT_FILTER_ALL, NULL, 0, 0, 10, &al, NULL) == NL_RESULT_OK);
  CHECK(nl_audit_list_free(al) == NL_RESULT_OK);
  CHECK(nl_audit_list_free(al) == NL_RESULT_USE_AFTER_FREE);
  CHECK(nl_audit_list_free((nl_audit_list *)vl) == NL_RESULT_USE_AFTER_FREE);
  nl_fleet_free(g);

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

  nl_audit_list *al = NULL;
  CHECK(nl_fleet_audit_query_list(f, NL_AUDIT_FILTER_NODE, S("a"), 0, 100, &al, NULL) == NL_RESULT_OK);
  size_t strings_len = 0;
  const nl_audit_item *entries = nl_audit_list_items(al, &count);
  const uint8_t *strings = nl_audit_list_strings(al, &strings_len);
  CHECK(count == 4); /* provision, initializing, ready, active */
  CHECK(entries[0].action == NL_AUDIT_ACTION_NODE_PROVISION && (entries[0].flags & NL_AUDIT_FLAG_HAS_SNAPSHOT));
  CHECK(entries[0].from_state == UINT32_MAX && entries[0].to_state == NL_STATE_PROVISIONING);
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

  /* Equal nodes: the id decides, "a" goes and its container moves to "b". */
  CHECK(nl_fleet_update(f, S("a"), S("{\"hourly_cost_eur\":0.1}"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_update(f, S("b"), S("{\"hourly_cost_eur\":0.1}"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_consolidation_plan_json(f, NULL, 0, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"moves\":[{\"container_id\":\"ca\",\"ram_mb\":1024,\"from_node\":\"a\",\"to_node\":\"b\"}]"));
  const char *req = "{\"policy\":{\"min_savings_eur_per_hour\":0.2}}";
  CHECK(nl_fleet_consolidation_plan_json(f, S(req), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"refusal\":\"savings_below_threshold\""));
  nl_error *err = NULL;
  CHECK(nl_fleet_consolidation_plan_json(f, S("{\"polcy\":{}}"), &b, &err) == NL_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(nl_error_message(err), "unknown field") != NULL);
  nl_error_free(err);

  CHECK(nl_fleet_record_migration(f, S("ca"), S("a"), S("b"), S("consolidation_policy"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_add_container(f, S("a"), S("ca"), 1, NULL, &err) == NL_RESULT_CONTAINER_ELSEWHERE);
  CHECK(nl_error_detail_json(err, &b) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"node\":\"b\""));
  nl_error_free(err);
  CHECK(nl_fleet_record_migration(f, S("ca"), S("a"), S("b"), S("consolidation_policy"), NULL) == NL_RESULT_INVALID_ARGUMENT);
  CHECK(nl_fleet_record_migration(f, S("cb"), S("b"), S("booting"), S("x"), NULL) == NL_RESULT_NOT_SCHEDULABLE);
  CHECK(nl_fleet_audit_query(f, NL_AUDIT_FILTER_ACTION, NULL, 0, NL_AUDIT_ACTION_CONTAINER_MIGRATE, 10, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"reason\":\"moved to b\""));
  nl_fleet_free(f);
}

static void persistence(void) {
  char cmd_out[128];
  char dir[] = "/tmp/nl-c-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  nl_options *opts = NULL;
  CHECK(nl_options_new(&opts, NULL) == NL_RESULT_OK);
  CHECK(nl_options_use_manual_clock(opts, T0, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set_data_dir(opts, S(dir), NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(opts, NL_OPTION_SYNC_EVERY_WRITES, 8, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(opts, NL_OPTION_COMPACT_AFTER_RECORDS, 0, NULL) == NL_RESULT_OK); /* the default */
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
  nl_instance_id id1, id2;
  CHECK(nl_fleet_instance_id(f, &id1, NULL) == NL_RESULT_OK);
  nl_fleet_free(f);
  CHECK(nl_fleet_new(opts, &f, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_instance_id(f, &id2, NULL) == NL_RESULT_OK);
  CHECK(memcmp(&id1, &id2, sizeof id1) == 0); /* the directory keeps the fleet's identity */
  nl_fleet_free(f);
  nl_options_free(opts);

  /* Salvage into a new directory (nothing is damaged here: everything is recovered). */
  char out[64];
  snprintf(out, sizeof out, "%s-salvaged", dir);
  CHECK(nl_salvage(S(dir), (const uint8_t *)out, strlen(out), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"lost_sequence_ranges\":[]"));
  snprintf(cmd_out, sizeof cmd_out, "rm -rf %s", out);
  CHECK(system(cmd_out) == 0);

  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
}

/* ----- what the conductor needs: cordons, claims, placeholders ------------------------------ */

/* Registers a placeholder (the flat nl_node_spec has no field for it: the JSON operation). */
static void register_placeholder(nl_fleet *f, const char *id) {
  char req[256];
  snprintf(req, sizeof req, "{\"op\":\"register\",\"spec\":{\"id\":\"%s\",\"origin\":\"cloud\",\"placeholder\":true}}", id);
  nl_bytes *b = NULL;
  CHECK(nl_fleet_call(f, (const uint8_t *)req, strlen(req), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"placeholder\":true"));
  nl_bytes_free(b);
}

static void conductor_fit(void) {
  nl_fleet *f = new_fleet();
  nl_error *err = NULL;
  nl_bytes *b = NULL;

  /* A placeholder registered before its VM exists, then bound to the provider's id. */
  nl_node_spec s = spec("provisioning-1", NL_ORIGIN_CLOUD, 4096);
  s.labels_json = (const uint8_t *)"{\"zone\":\"fsn1\"}";
  s.labels_json_len = strlen("{\"zone\":\"fsn1\"}");
  CHECK(nl_fleet_register(f, &s, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_rename(f, S("provisioning-1"), S("hcloud-7"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_node_json(f, S("hcloud-7"), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"labels\":{\"zone\":\"fsn1\"}"));
  CHECK(audit_contains(f, "hcloud-7", "\"related_node_id\":\"provisioning-1\""));
  /* Registering again is an upsert; the real RAM arrives later. */
  s = spec("hcloud-7", NL_ORIGIN_CLOUD, 16384);
  CHECK(nl_fleet_register(f, &s, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_update(f, S("hcloud-7"), S("{\"hourly_cost_eur\":0.05}"), NULL) == NL_RESULT_OK);
  CHECK(audit_contains(f, "hcloud-7", "hourly_cost_eur 0 -> 0.05"));
  s = spec("hcloud-7", NL_ORIGIN_SYSTEM, 1);
  CHECK(nl_fleet_register(f, &s, NULL) == NL_RESULT_NODE_EXISTS);

  /* A VM that was never created: only a placeholder is abandoned (a node with a VM is deleted
     through the protocol). */
  CHECK(nl_fleet_abandon_provisioning(f, S("hcloud-7"), S("x"), NULL) == NL_RESULT_INVALID_ARGUMENT);
  register_placeholder(f, "provisioning-2");
  const uint8_t why[] = {'q', 'u', 'o', 't', 'a', 0x00, 0xff};
  CHECK(nl_fleet_abandon_provisioning(f, S("provisioning-2"), why, sizeof why, NULL) == NL_RESULT_OK);
  /* The NUL is escaped (JSON shows its backslash doubled), the invalid byte replaced. */
  CHECK(audit_contains(f, "provisioning-2", "\"error\":\"quota\\\\x00\xef\xbf\xbd\""));

  /* A node booted from an image starts ready. */
  s = spec("img", NL_ORIGIN_CLOUD, 8192);
  s.initial_state = NL_STATE_READY;
  CHECK(nl_fleet_register(f, &s, NULL) == NL_RESULT_OK);

  /* Claims: capacity before the container id is known; they expire. */
  nl_claim_id claim;
  CHECK(nl_fleet_claim(f, S("img"), 2048, 0, &claim, NULL) == NL_RESULT_OK);
  nl_container_outcome o;
  CHECK(nl_fleet_confirm_claim(f, &claim, S("mc-1"), &o, NULL) == NL_RESULT_OK);
  CHECK(o.state == NL_STATE_ACTIVE && o.current_containers == 1);
  CHECK(nl_fleet_confirm_claim(f, &claim, S("mc-2"), &o, NULL) == NL_RESULT_CLAIM_NOT_FOUND);
  CHECK(nl_fleet_claim(f, S("img"), 1024, 60000, &claim, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_advance_clock_ms(f, MIN, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_tick(f, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"ram_mb\":1024,\"age_ms\":60000"));
  CHECK(audit_contains(f, "img", "\"action\":\"reservation_expired\""));
  bool released = true;
  CHECK(nl_fleet_release_claim(f, &claim, &released, NULL) == NL_RESULT_OK && !released);

  /* A cordon: no new containers, state and containers unchanged. */
  bool created = false;
  CHECK(nl_fleet_cordon(f, S("img"), S("disk-full"), S("disk 97% full"), false, &created, NULL) == NL_RESULT_OK);
  CHECK(created);
  CHECK(nl_fleet_add_container(f, S("img"), S("mc-3"), 1, NULL, &err) == NL_RESULT_NOT_SCHEDULABLE);
  CHECK(strstr(nl_error_message(err), "disk-full: disk 97% full") != NULL);
  nl_error_free(err);
  CHECK(nl_fleet_uncordon(f, S("img"), S("disk-full"), &created, NULL) == NL_RESULT_OK && created);

  /* A lost ticket is found again. */
  CHECK(nl_fleet_remove_container(f, S("img"), S("mc-1"), &o, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_advance_clock_ms(f, 31 * MIN, NULL) == NL_RESULT_OK);
  nl_ticket_id t, found;
  bool has = false;
  CHECK(nl_fleet_begin_decommission(f, S("img"), S("reactive_policy"), &t, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_fail_decommission(f, S("img"), &t, S("503"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_ticket_for(f, S("img"), &found, &has, NULL) == NL_RESULT_OK);
  CHECK(has && memcmp(&t, &found, sizeof t) == 0);
  /* A ticket is bound to its node, and to its fleet. */
  CHECK(nl_fleet_complete_decommission(f, S("hcloud-7"), &found, NULL) == NL_RESULT_TICKET_INVALID);
  nl_fleet *other = new_fleet();
  cloud_ready(other, "img");
  CHECK(nl_fleet_complete_decommission(other, S("img"), &found, NULL) == NL_RESULT_TICKET_INVALID);
  nl_fleet_free(other);
  CHECK(nl_fleet_complete_decommission(f, S("img"), &found, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_ticket_for(f, S("img"), &found, &has, NULL) == NL_RESULT_OK && !has);

  /* Every operation through one JSON call, as the bindings use it. */
  CHECK(nl_fleet_call(f, S("{\"op\":\"cordon\",\"node\":\"hcloud-7\",\"name\":\"k\",\"reason\":\"r\"}"), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "{\"created\":true}"));
  CHECK(nl_fleet_call(f, S("{\"op\":\"nodes_page\",\"query\":{\"limit\":1}}"), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"next_after\":\"hcloud-7\""));
  CHECK(nl_fleet_call(f, S("{\"op\":\"frobnicate\"}"), &b, &err) == NL_RESULT_INVALID_ARGUMENT);
  CHECK(strstr(nl_error_message(err), "unknown variant") != NULL);
  nl_error_free(err);
  CHECK(nl_fleet_call(f, S("{\"op\":\"transition\",\"node\":\"hcloud-7\",\"to\":\"draining\",\"reason\":\"x\"}"), &b, NULL) ==
        NL_RESULT_PROTOCOL_ONLY);
  nl_fleet_free(f);
}

static void plan_execution(void) {
  nl_fleet *f = new_fleet();
  cloud_ready(f, "a");
  cloud_ready(f, "b");
  CHECK(nl_fleet_update(f, S("a"), S("{\"hourly_cost_eur\":0.02}"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_update(f, S("b"), S("{\"hourly_cost_eur\":0.2}"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_add_container(f, S("a"), S("ca"), 1024, NULL, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_add_container(f, S("b"), S("cb"), 1024, NULL, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_advance_clock_ms(f, 60 * MIN, NULL) == NL_RESULT_OK);
  nl_bytes *plan = NULL, *exec = NULL;
  CHECK(nl_fleet_consolidation_plan_json(f, NULL, 0, &plan, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_execute_plan_json(f, nl_bytes_data(plan), nl_bytes_len(plan), NULL, 0, &exec, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(exec, "\"remove\":[\"b\"]"));
  /* The same plan again: its node is already being evacuated. */
  nl_error *err = NULL;
  CHECK(nl_fleet_execute_plan_json(f, nl_bytes_data(plan), nl_bytes_len(plan), NULL, 0, &exec, &err) ==
        NL_RESULT_STALE_PLAN);
  nl_error_free(err);
  nl_bytes_free(plan);
  CHECK(nl_fleet_record_migration(f, S("cb"), S("b"), S("a"), S("consolidation_policy"), NULL) == NL_RESULT_OK);
  nl_ticket_id t;
  CHECK(nl_fleet_begin_decommission(f, S("b"), S("consolidation_policy"), &t, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_complete_decommission(f, S("b"), &t, NULL) == NL_RESULT_OK);
  nl_fleet_free(f);
}

/* ----- every other call ------------------------------------------------------------------- */

/* The calls the scenarios above do not reach: holds, health, restore, clock, policy, views,
 * audit pages and records, abandoning a plan, identity. Each is checked for its effect. */
static void remaining_calls(void) {
  nl_fleet *f = new_fleet();
  cloud_ready(f, "h");
  int64_t now = 0;
  CHECK(nl_fleet_now_ms(f, &now, NULL) == NL_RESULT_OK && now == T0);

  /* Holds block deletion and are named in the verdict. */
  bool created = false, released = false;
  CHECK(nl_fleet_place_hold(f, S("h"), S("world:srv-1"), S("stopped server data"), &created, NULL) == NL_RESULT_OK &&
        created);
  CHECK(nl_fleet_advance_clock_ms(f, 60 * MIN, NULL) == NL_RESULT_OK);
  nl_bytes *b = NULL;
  CHECK(nl_fleet_evaluate_json(f, S("h"), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "world:srv-1 (stopped server data)"));
  CHECK(nl_fleet_release_hold(f, S("h"), S("world:srv-1"), &released, NULL) == NL_RESULT_OK && released);
  CHECK(nl_fleet_release_hold(f, S("h"), S("world:srv-1"), &released, NULL) == NL_RESULT_OK && !released);
  CHECK(nl_fleet_evaluate_all_json(f, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"node_id\":\"h\",\"verdict\":{\"allowed\":true"));

  /* A keyed reservation confirmed into a container. */
  nl_container_outcome out;
  CHECK(nl_fleet_reserve(f, S("h"), S("c1"), 512, &created, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_confirm_reservation(f, S("h"), S("c1"), &out, NULL) == NL_RESULT_OK);
  CHECK(out.changed && out.state == NL_STATE_ACTIVE && out.current_containers == 1);

  /* Health: three failures make it unhealthy, a success brings it back with its sync pending;
   * syncing the containers completes it. */
  nl_health_outcome h;
  for (int i = 0; i < 3; i++) CHECK(nl_fleet_report_health(f, S("h"), false, &h, NULL) == NL_RESULT_OK);
  CHECK(h.state == NL_STATE_UNHEALTHY && h.health == NL_HEALTH_UNHEALTHY && h.consecutive_failures == 3);
  CHECK(nl_fleet_report_health(f, S("h"), true, &h, NULL) == NL_RESULT_OK && h.state == NL_STATE_READY);
  nl_verdict v;
  CHECK(nl_fleet_evaluate(f, S("h"), &v, NULL) == NL_RESULT_OK);
  CHECK(v.reasons_mask & (1u << (NL_REASON_CONTAINER_SYNC_PENDING - 100)));
  CHECK(nl_fleet_sync_containers(f, S("h"), S("[[\"c1\",512]]"), &out, NULL) == NL_RESULT_OK);
  CHECK(out.state == NL_STATE_ACTIVE && out.current_containers == 1);
  /* Refreshing the view leaves the sync pending; completing it is its own call. */
  CHECK(nl_fleet_evaluate(f, S("h"), &v, NULL) == NL_RESULT_OK);
  CHECK(v.reasons_mask & (1u << (NL_REASON_CONTAINER_SYNC_PENDING - 100)));
  bool synced = false;
  CHECK(nl_fleet_complete_container_sync(f, S("h"), &synced, NULL) == NL_RESULT_OK && synced);
  CHECK(nl_fleet_complete_container_sync(f, S("h"), &synced, NULL) == NL_RESULT_OK && !synced);
  CHECK(nl_fleet_complete_container_sync(f, S("nobody"), &synced, NULL) == NL_RESULT_NODE_NOT_FOUND);
  CHECK(nl_fleet_evaluate(f, S("h"), &v, NULL) == NL_RESULT_OK);
  CHECK(!(v.reasons_mask & (1u << (NL_REASON_CONTAINER_SYNC_PENDING - 100))));
  nl_error *err = NULL;
  CHECK(nl_fleet_sync_containers(f, S("h"), S("{\"c1\":512}"), &out, &err) == NL_RESULT_INVALID_ARGUMENT);
  nl_error_free(err);

  /* A recovered node waits for the restore pass. */
  nl_node_spec r = spec("back", NL_ORIGIN_RECOVERED, 4096);
  CHECK(nl_fleet_register(f, &r, NULL) == NL_RESULT_OK);
  size_t completed = 0;
  CHECK(nl_fleet_finish_restore(f, &completed, NULL) == NL_RESULT_OK && completed == 1);

  /* A wall step moves recorded time only. */
  CHECK(nl_fleet_set_clock_ms(f, T0 + 1000, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_now_ms(f, &now, NULL) == NL_RESULT_OK && now == T0 + 1000);

  /* Policy: replaced from options, read back with "off". */
  nl_options *o = NULL;
  CHECK(nl_options_new(&o, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(o, NL_OPTION_READY_GRACE_MS, NL_OFF, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(o, NL_OPTION_UNHEALTHY_GRACE_MS, 20 * MIN, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_set_policy(f, o, NULL) == NL_RESULT_OK);
  CHECK(nl_options_set(o, NL_OPTION_IDLE_GRACE_MS, 500 * 24 * 3600 * 1000ull, NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_set_policy(f, o, &err) == NL_RESULT_INVALID_SETTING);
  nl_error_free(err);
  nl_options_free(o);
  CHECK(nl_fleet_policy_json(f, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"ready_grace_ms\":\"off\""));
  CHECK(nl_fleet_policy_json(f, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"unhealthy_grace_ms\":1200000"));

  /* Views: every node, a page, a filtered page. */
  CHECK(nl_fleet_nodes_json(f, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"id\":\"h\""));
  CHECK(nl_fleet_nodes_page_json(f, S("{\"limit\":1}"), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"next_after\":\"back\""));
  CHECK(nl_fleet_nodes_page_json(f, S("{\"state\":\"draining\",\"limit\":10}"), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "{\"nodes\":[],\"next_after\":null}"));
  CHECK(nl_fleet_nodes_page_json(f, S("{\"limit\":1,\"typo\":1}"), &b, &err) == NL_RESULT_INVALID_ARGUMENT);
  nl_error_free(err);

  /* Audit: a caller's record, a page, the statistics. */
  uint64_t seq = 0;
  CHECK(nl_fleet_audit_record(f, NL_AUDIT_ACTION_SCALE_UP, NL_AUDIT_RESULT_SUCCESS, S("h"), S(""), S("demand"),
                              S("reactive_policy"), S(""), &seq, NULL) == NL_RESULT_OK);
  CHECK(seq > 0);
  CHECK(nl_fleet_audit_page_json(f, S("{\"filter\":{\"by\":\"action\",\"value\":\"scale_up\"},\"limit\":5}"), &b,
                                 NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"reason\":\"demand\""));
  CHECK(nl_fleet_audit_stats(f, &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "\"scale_up\":1"));

  /* Abandoning an unknown plan lifts nothing; forgetting a live node is refused. */
  CHECK(nl_fleet_abandon_plan(f, S("no-such-plan"), &b, NULL) == NL_RESULT_OK);
  CHECK(bytes_contain(b, "[]"));
  CHECK(nl_fleet_forget(f, S("h"), &err) != NL_RESULT_OK);
  nl_error_free(err);
  register_placeholder(f, "placeholder");
  CHECK(nl_fleet_abandon_provisioning(f, S("placeholder"), S("quota"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_forget(f, S("placeholder"), NULL) == NL_RESULT_OK);
  CHECK(nl_fleet_node_json(f, S("placeholder"), &b, &err) == NL_RESULT_NODE_NOT_FOUND);
  nl_error_free(err);

  /* The by-value forms: the outcome, and on failure an error object to free. */
  nl_verdict_result vr = nl_fleet_evaluate_r(f, S("back"));
  CHECK(vr.result == NL_RESULT_OK && vr.error == NULL && vr.verdict.state == NL_STATE_READY);
  vr = nl_fleet_evaluate_r(f, S("ghost"));
  CHECK(vr.result == NL_RESULT_NODE_NOT_FOUND && vr.error != NULL && nl_error_code(vr.error) == NL_RESULT_NODE_NOT_FOUND);
  nl_error_free(vr.error);
  nl_container_result cr = nl_fleet_container_event_r(f, true, S("back"), S("c9"), 256);
  CHECK(cr.result == NL_RESULT_OK && cr.error == NULL && cr.outcome.changed && cr.outcome.state == NL_STATE_ACTIVE);
  cr = nl_fleet_container_event_r(f, false, S("back"), S("c9"), 0);
  CHECK(cr.result == NL_RESULT_OK && cr.outcome.state == NL_STATE_IDLE && cr.outcome.current_containers == 0);
  cr = nl_fleet_container_event_r(f, true, S("back"), S("\xff"), 1);
  CHECK(cr.result == NL_RESULT_INVALID_UTF8 && cr.error != NULL);
  nl_error_free(cr.error);

  /* Identity of the build. */
  CHECK(strlen(nl_source_fingerprint()) == 64);
  CHECK(nl_noop() == 0);
  nl_fleet_free(f);
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
    nl_ticket_id ticket;
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
          nl_fleet_cancel_decommission(w->fleet, S(node), &ticket, S("test"), NULL, NULL);
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
  conductor_fit();
  plan_execution();
  planning();
  persistence();
  remaining_calls();
  threads();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
