# scripts/lib/bench.sh: what the benchmark scripts (bench, bench-ads, bench-curve,
# bench-scale, profile) share. Sourced, not run; the sourcing script defines
# log() first.

STACK_DIR=${WALLETCTL_STACK_DIR:-/tmp/walletctl-stack}
export PGPASSWORD=walletctl

# Builds walletctl as production should (the dist profile: release with fat
# LTO) and sets BIN.
build_dist() {
  log "building walletctl --profile dist (release with LTO)"
  cargo build --profile dist -p walletctl --locked >/dev/null 2>&1 || cargo build --profile dist -p walletctl --locked
  BIN=${CARGO_TARGET_DIR:-target}/dist/walletctl
}

psql_p() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 55432 -U postgres "$@"; }

# Until every standby has applied all the primary has written: WAL still
# replaying (a seed's, the last run's) would slow the next run.
wait_replayed() {
  local lsn
  lsn=$(psql_p -d postgres -t -A -c "SELECT pg_current_wal_lsn()")
  for _ in $(seq 600); do
    [ "$(psql_p -d postgres -t -A -c "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn IS NULL OR replay_lsn < '$lsn'")" = 0 ] && return
    sleep 0.5
  done
  log "the standbys are still replaying after 5 minutes; measuring anyway"
}

# Before each measured run: the standbys have applied everything and the
# outbox relay has published the last walletctl run's events, so no run
# pays for the one before it (its WAL replay or its relay backlog).
quiesce() {
  wait_replayed
  for _ in $(seq 600); do
    [ "$(psql_p -d "$DB" -t -A -c "SELECT count(*) FROM outbox WHERE sent_at_ms IS NULL")" = 0 ] && return
    sleep 0.5
  done
  log "the outbox still has unsent events after 5 minutes; measuring anyway"
}
# Runs a command once the machine has settled (quiesce).
settled() { quiesce; "$@"; }

# Exits unless `scripts/bench` has seeded database $1.
require_seeded() { # database
  psql_p -d "$1" -t -A -c "SELECT 1 FROM wallets WHERE user_id = 'bench99999'" 2>/dev/null | grep -q 1 \
    || { log "no seeded $1: run scripts/bench first"; exit 1; }
}

# Writes a configuration for one `serve` on database DB from the stack's:
# its own data directory and Kafka topic prefix (instances on one database
# share one), JSON logs at warn, and group
# commits on sessions of the primary itself (postgres.commit_url), as
# docs/configuration.md recommends: one round trip per group, no PgBouncer.
# Ports 28480-28483 (the last the admin listener, /metrics), or for
# INSTANCE i 2848i, 2849i, 2850i and 2851i; all below
# the kernel's ephemeral range, so a load generator that starts before a
# server cannot connect to itself.
bench_config() { # out, database, data dir, topic prefix, [instance]
  local out=$1 db=$2 data=$3 topic=$4 i=${5:-}
  local wallet=28480 ads=28481 display=28482 admin=28483
  if [ -n "$i" ]; then wallet=2848$i ads=2849$i display=2850$i admin=2851$i; fi
  sed -e "s#/walletctl\"#/$db\"#" -e "s#^data_dir = .*#data_dir = \"$data\"#" "$STACK_DIR/walletctl.toml" >"$out"
  printf '\n[log]\nformat = "json"\nfilter = "warn"\n\n[listen]\nwallet = "127.0.0.1:%s"\nads = "127.0.0.1:%s"\ndisplay = "127.0.0.1:%s"\nadmin = "127.0.0.1:%s"\n' \
    "$wallet" "$ads" "$display" "$admin" >>"$out"
  sed -i "s#^brokers = \(.*\)#brokers = \1\ntopic_prefix = \"$topic\"#" "$out"
  sed -i 's#^url = "postgres://\([^@]*\)@127.0.0.1:56432/\(.*\)"#&\ncommit_url = "postgres://\1@127.0.0.1:55432/\2"#' "$out"
}

# A new token for the load generator (a database that already has tokens
# gets none from `serve`).
bench_token() { # config
  "$BIN" --config "$1" token create "$(basename "$0")-$(date +%s%N)" --scopes read,deduct,credit -o json \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}

# walletctl's per-deduction transaction (a batch of one), statement for
# statement, for pgbench; idempotency keys start with KEY.
same_tx() { # key prefix, user expression
  cat <<SQL
\set k random(1, 9223372036854775806)
BEGIN;
SET LOCAL synchronous_commit TO 'remote_apply';
INSERT INTO idempotency_keys (owner, key, request_hash, status, response, created_at_ms) VALUES ('pgbench', '$1' || :k, 'h', 0, '', 0) ON CONFLICT (owner, key) DO NOTHING;
SELECT balance, version, region FROM wallets WHERE user_id = $2 FOR UPDATE \gset
INSERT INTO ledger_entries (user_id, kind, amount, balance_after, version, reason, reference, idempotency_key, actor, lock_fence, created_at_ms) VALUES ($2, 'deduct', -1, :balance - 1, :version + 1, NULL, NULL, '$1' || :k, 'pgbench', NULL, 0) RETURNING id;
INSERT INTO outbox (event_id, topic, key, payload, created_at_ms, sent_at_ms) VALUES ('$1' || :k, 'pgbench', $2, '{}', 0, 0);
UPDATE idempotency_keys SET status = 200, response = '{}' WHERE owner = 'pgbench' AND key = '$1' || :k;
UPDATE wallets SET balance = :balance - 1, version = :version + 1, updated_at_ms = 0 WHERE user_id = $2 AND version = :version;
END;
SQL
}

# The leanest safe deduction one would write by hand: claim the key, a
# conditional update, the ledger entry, the outbox row; one transaction,
# remote_apply. Keys (and their owner) start with KEY.
lean_tx() { # key prefix, user expression
  cat <<SQL
\set k random(1, 9223372036854775806)
BEGIN;
SET LOCAL synchronous_commit TO 'remote_apply';
INSERT INTO idempotency_keys (owner, key, request_hash, status, response, created_at_ms) VALUES ('$1', '$1' || :k, 'h', 200, '{}', 0);
UPDATE wallets SET balance = balance - 1, version = version + 1, updated_at_ms = 0 WHERE user_id = $2 AND balance >= 1 RETURNING balance, version \gset
INSERT INTO ledger_entries (user_id, kind, amount, balance_after, version, reason, reference, idempotency_key, actor, lock_fence, created_at_ms) VALUES ($2, 'deduct', -1, :balance, :version, NULL, NULL, '$1' || :k, '$1', NULL, 0);
INSERT INTO outbox (event_id, topic, key, payload, created_at_ms, sent_at_ms) VALUES ('$1' || :k, 'pgbench', $2, '{}', 0, 0);
END;
SQL
}
