-- Idempotency keys belong to the caller (the token's name), as Stripe's do:
-- two clients using "order-17" get their own answers, and neither can see or
-- block the other's key.
--
-- Keys stored before this migration are given the owner of the ledger entry
-- they produced (refusals had none and keep an empty owner: a retry of one of
-- those is decided afresh, which can only refuse or move the same money once).
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';
UPDATE idempotency_keys k SET owner = l.actor
    FROM ledger_entries l WHERE l.idempotency_key = k.key;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (owner, key);
ALTER TABLE idempotency_keys ALTER COLUMN owner DROP DEFAULT;

-- walletctl_apply_batch, version 2. The order of work is the same as the
-- Rust path's (src/wallet/store.rs) and the same in every batch:
--   1. lock the wallet row;
--   2. claim the batch's distinct keys, sorted by key, so that two batches
--      of different users by one caller never wait on each other in a cycle;
--   3. decide each command in arrival order; repeats of a key inside the
--      batch are answered by the caller from the first occurrence.
-- The stored answer is the explicit format "answer.v1" (src/wallet/model.rs,
-- StoredAnswer): its field names are fixed here, not borrowed from the API.
CREATE OR REPLACE FUNCTION walletctl_apply_batch(p_user TEXT, p_cmds JSONB, p_now BIGINT, p_max BIGINT, p_sync TEXT)
RETURNS TABLE (o_idx INTEGER, o_outcome TEXT, o_response TEXT)
LANGUAGE plpgsql AS $fn$
DECLARE
    c JSONB;
    n INTEGER := 0;
    v_owner TEXT;
    v_balance BIGINT;
    v_version BIGINT;
    v_read_version BIGINT;
    v_region TEXT;
    v_found BOOLEAN;
    v_changed BOOLEAN := false;
    v_hash TEXT;
    v_resp TEXT;
    v_delta BIGINT;
    v_next BIGINT;
    v_entry_id BIGINT;
    v_answer JSONB;
    v_status BIGINT;
    v_claimed TEXT[] := '{}';
    v_seen TEXT[] := '{}';
BEGIN
    IF p_sync IS NOT NULL THEN
        PERFORM set_config('synchronous_commit', p_sync, true);
    END IF;
    -- Every command of a batch comes from one request each, but one caller
    -- per key namespace: the owner is each command's actor.
    SELECT w.balance, w.version, w.region INTO v_balance, v_version, v_region
        FROM wallets w WHERE w.user_id = p_user FOR UPDATE;
    v_found := FOUND;
    v_read_version := v_version;

    IF v_found THEN
        WITH firsts AS (
            SELECT DISTINCT ON (e.value->>'actor', e.value->>'key')
                   e.value->>'actor' AS owner, e.value->>'key' AS key, e.value->>'hash' AS hash
              FROM jsonb_array_elements(p_cmds) WITH ORDINALITY AS e(value, ord)
             ORDER BY e.value->>'actor', e.value->>'key', e.ord
        ), ins AS (
            INSERT INTO idempotency_keys (owner, key, request_hash, status, response, created_at_ms)
            SELECT f.owner, f.key, f.hash, 0, '', p_now FROM firsts f ORDER BY f.owner, f.key
            ON CONFLICT (owner, key) DO NOTHING
            RETURNING owner || E'\x1f' || key AS id
        )
        SELECT coalesce(array_agg(ins.id), '{}') INTO v_claimed FROM ins;
    END IF;

    FOR c IN SELECT e.value FROM jsonb_array_elements(p_cmds) AS e LOOP
        o_idx := n;
        n := n + 1;
        v_owner := c->>'actor';
        -- A key claimed by this batch is decided at its first occurrence;
        -- later ones repeat that answer. An unclaimed key (stored earlier, or
        -- no wallet) is looked up by every occurrence with its own hash.
        IF (v_owner || E'\x1f' || (c->>'key')) = ANY (v_claimed) THEN
            IF (v_owner || E'\x1f' || (c->>'key')) = ANY (v_seen) THEN
                o_outcome := 'repeat'; o_response := NULL; RETURN NEXT; CONTINUE;
            END IF;
            v_seen := v_seen || (v_owner || E'\x1f' || (c->>'key'));
        ELSE
            SELECT k.request_hash, k.response INTO v_hash, v_resp FROM idempotency_keys k
                WHERE k.owner = v_owner AND k.key = c->>'key';
            IF NOT FOUND THEN
                o_outcome := 'missing'; o_response := NULL;
            ELSIF v_hash <> c->>'hash' THEN
                o_outcome := 'mismatch'; o_response := NULL;
            ELSE
                o_outcome := 'stored'; o_response := v_resp;
            END IF;
            RETURN NEXT; CONTINUE;
        END IF;

        v_delta := (c->>'delta')::BIGINT;
        v_next := v_balance + v_delta;
        IF v_next >= 0 AND v_next <= p_max THEN
            v_balance := v_next;
            v_version := v_version + 1;
            v_changed := true;
            INSERT INTO ledger_entries (user_id, kind, amount, balance_after, version, reason, reference,
                                        idempotency_key, actor, lock_fence, created_at_ms)
                VALUES (p_user, c->>'kind', v_delta, v_balance, v_version, c->>'reason', c->>'reference',
                        c->>'key', v_owner, (c->>'fence')::BIGINT, p_now)
                RETURNING id INTO v_entry_id;
            INSERT INTO outbox (event_id, topic, key, payload, created_at_ms)
                VALUES (c->>'event_id', 'balance_updated', p_user,
                        jsonb_build_object('event_id', c->>'event_id', 'type', 'balance_updated', 'user_id', p_user,
                            'region', v_region, 'balance', v_balance, 'version', v_version, 'delta', v_delta,
                            'entry_id', v_entry_id, 'entry_kind', c->>'kind', 'occurred_at_ms', p_now)::TEXT,
                        p_now);
            IF c->>'kind' = 'adjust' THEN
                INSERT INTO audit_log (actor, action, target, details, created_at_ms)
                    VALUES (v_owner, 'wallet.adjust', p_user,
                            jsonb_build_object('amount', v_delta, 'reason', c->'reason', 'entry_id', v_entry_id)::TEXT, p_now);
            END IF;
            v_answer := jsonb_build_object('format', 'answer.v1', 'outcome', 'applied',
                'entry', jsonb_build_object('id', v_entry_id, 'user_id', p_user,
                    'kind', c->>'kind', 'amount', v_delta, 'balance_after', v_balance, 'version', v_version,
                    'reason', c->'reason', 'reference', c->'reference', 'actor', v_owner, 'created_at_ms', p_now));
            v_status := 200;
        ELSE
            v_answer := jsonb_build_object('format', 'answer.v1', 'outcome', 'refused',
                'refusal', jsonb_build_object(
                    'code', CASE WHEN v_delta < 0 THEN 'insufficient_funds' ELSE 'balance_limit_exceeded' END,
                    'balance', v_balance, 'requested', abs(v_delta)));
            v_status := 409;
        END IF;
        UPDATE idempotency_keys SET status = v_status, response = v_answer::TEXT
            WHERE owner = v_owner AND key = c->>'key';
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
