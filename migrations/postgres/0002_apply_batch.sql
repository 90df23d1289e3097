-- walletctl_apply_batch: one user's money commands in one call, in order.
-- The same steps as Store::apply_batch runs from Rust on SQLite, done inside
-- the server so that a whole batch costs one statement (PgBouncer in
-- transaction mode makes every client statement an unprepared round trip or two).
--
-- p_cmds: [{"key","hash","kind","delta","reason","reference","actor","fence","event_id"}, ...]
-- Returns one row per command: o_outcome is
--   fresh    decided now; o_response is the stored answer
--   stored   the key was answered before with the same request; o_response is that answer
--   mismatch the key was used before with another request
--   missing  no such wallet (nothing was written for it)
--   repeat   the key appeared earlier in this batch (answered by the caller)
CREATE FUNCTION walletctl_apply_batch(p_user TEXT, p_cmds JSONB, p_now BIGINT, p_max BIGINT, p_sync TEXT)
RETURNS TABLE (o_idx INTEGER, o_outcome TEXT, o_response TEXT)
LANGUAGE plpgsql AS $fn$
DECLARE
    c JSONB;
    n INTEGER := 0;
    v_balance BIGINT;
    v_version BIGINT;
    v_read_version BIGINT;
    v_region TEXT;
    v_found BOOLEAN;
    v_changed BOOLEAN := false;
    v_claimed BIGINT;
    v_hash TEXT;
    v_resp TEXT;
    v_delta BIGINT;
    v_next BIGINT;
    v_entry_id BIGINT;
    v_answer JSONB;
    v_status BIGINT;
    v_keys TEXT[] := '{}';
BEGIN
    IF p_sync IS NOT NULL THEN
        PERFORM set_config('synchronous_commit', p_sync, true);
    END IF;
    SELECT w.balance, w.version, w.region INTO v_balance, v_version, v_region
        FROM wallets w WHERE w.user_id = p_user FOR UPDATE;
    v_found := FOUND;
    v_read_version := v_version;

    FOR c IN SELECT e.value FROM jsonb_array_elements(p_cmds) AS e LOOP
        o_idx := n;
        n := n + 1;
        IF (c->>'key') = ANY (v_keys) THEN
            o_outcome := 'repeat'; o_response := NULL; RETURN NEXT; CONTINUE;
        END IF;
        v_claimed := 0;
        IF v_found THEN
            INSERT INTO idempotency_keys (key, request_hash, status, response, created_at_ms)
                VALUES (c->>'key', c->>'hash', 0, '', p_now) ON CONFLICT (key) DO NOTHING;
            GET DIAGNOSTICS v_claimed = ROW_COUNT;
        END IF;
        IF v_claimed = 0 THEN
            SELECT k.request_hash, k.response INTO v_hash, v_resp FROM idempotency_keys k WHERE k.key = c->>'key';
            IF NOT FOUND THEN
                o_outcome := 'missing'; o_response := NULL;
            ELSIF v_hash <> c->>'hash' THEN
                o_outcome := 'mismatch'; o_response := NULL;
            ELSE
                o_outcome := 'stored'; o_response := v_resp;
            END IF;
            RETURN NEXT; CONTINUE;
        END IF;

        v_keys := v_keys || (c->>'key');
        v_delta := (c->>'delta')::BIGINT;
        v_next := v_balance + v_delta;
        IF v_next >= 0 AND v_next <= p_max THEN
            v_balance := v_next;
            v_version := v_version + 1;
            v_changed := true;
            INSERT INTO ledger_entries (user_id, kind, amount, balance_after, version, reason, reference,
                                        idempotency_key, actor, lock_fence, created_at_ms)
                VALUES (p_user, c->>'kind', v_delta, v_balance, v_version, c->>'reason', c->>'reference',
                        c->>'key', c->>'actor', (c->>'fence')::BIGINT, p_now)
                RETURNING id INTO v_entry_id;
            INSERT INTO outbox (event_id, topic, key, payload, created_at_ms)
                VALUES (c->>'event_id', 'balance_updated', p_user,
                        jsonb_build_object('event_id', c->>'event_id', 'type', 'balance_updated', 'user_id', p_user,
                            'region', v_region, 'balance', v_balance, 'version', v_version, 'delta', v_delta,
                            'entry_id', v_entry_id, 'entry_kind', c->>'kind', 'occurred_at_ms', p_now)::TEXT,
                        p_now);
            IF c->>'kind' = 'adjust' THEN
                INSERT INTO audit_log (actor, action, target, details, created_at_ms)
                    VALUES (c->>'actor', 'wallet.adjust', p_user,
                            jsonb_build_object('amount', v_delta, 'reason', c->'reason', 'entry_id', v_entry_id)::TEXT, p_now);
            END IF;
            v_answer := jsonb_build_object('Ok', jsonb_build_object('id', v_entry_id, 'user_id', p_user,
                'kind', c->>'kind', 'amount', v_delta, 'balance_after', v_balance, 'version', v_version,
                'reason', c->'reason', 'reference', c->'reference', 'actor', c->>'actor', 'created_at_ms', p_now));
            v_status := 200;
        ELSE
            v_answer := jsonb_build_object('Err', jsonb_build_object(
                'code', CASE WHEN v_delta < 0 THEN 'insufficient_funds' ELSE 'balance_limit_exceeded' END,
                'balance', v_balance, 'requested', abs(v_delta)));
            v_status := 409;
        END IF;
        UPDATE idempotency_keys SET status = v_status, response = v_answer::TEXT WHERE key = c->>'key';
        o_outcome := 'fresh'; o_response := v_answer::TEXT; RETURN NEXT;
    END LOOP;

    IF v_changed THEN
        UPDATE wallets SET balance = v_balance, version = v_version, updated_at_ms = p_now
            WHERE user_id = p_user AND version = v_read_version;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'wallet % changed under its row lock', p_user;
        END IF;
    END IF;
END
$fn$;
