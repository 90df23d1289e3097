-- walletctl_apply_group, version 2: the same rules as version 1 (which
-- called walletctl_apply_batch once per user), done with a fixed number of
-- statements per group instead of three or four per command. Profiling the
-- server under the deduct load showed its time went to starting the
-- executor for each small statement, not to the rows themselves.
--
-- The order of work, for the whole group:
--   1. lock the wallet rows, in user-id order (COLLATE "C", the caller's
--      byte order);
--   2. claim the distinct keys of users with a wallet, sorted by (owner,
--      key), in one INSERT … ON CONFLICT DO NOTHING (it waits for a
--      concurrent claim of the same key, as before);
--   3. look up the keys this call did not claim, in one SELECT;
--   4. decide each command in memory, in arrival order per user: the first
--      occurrence of a claimed key decides; a later one of the same user
--      repeats it (answered by the caller); one of another user, after the
--      claim, is a mismatch (the request hash names the user); a user
--      without a wallet before the claim sees no key;
--   5. write the ledger entries (ids taken from their sequence in order),
--      the outbox rows, the audit rows, the keys' answers and the wallets,
--      one statement each.
-- Answers are the same rows as before: (user position, command position,
-- outcome, stored answer "answer.v1").
CREATE OR REPLACE FUNCTION walletctl_apply_group(p_users TEXT[], p_batches JSONB, p_now BIGINT, p_max BIGINT, p_sync TEXT)
RETURNS TABLE (o_user INTEGER, o_idx INTEGER, o_outcome TEXT, o_response TEXT)
LANGUAGE plpgsql AS $fn$
DECLARE
    sep CONSTANT TEXT := E'\x1f';
    -- The commands, flattened in (user, command) order; users 1-based.
    c_user INTEGER[]; c_idx INTEGER[]; c_owner TEXT[]; c_key TEXT[]; c_hash TEXT[]; c_kind TEXT[];
    c_delta BIGINT[]; c_reason TEXT[]; c_reference TEXT[]; c_fence BIGINT[]; c_event TEXT[];
    -- Keys looked up (step 3), per command.
    k_found BOOLEAN[]; k_hash TEXT[]; k_resp TEXT[];
    -- The wallets, per user.
    w_balance BIGINT[]; w_version BIGINT[]; w_read BIGINT[]; w_region TEXT[];
    v_claimed TEXT[];
    v_seen JSONB := '{}';
    n INTEGER;
    i INTEGER;
    u INTEGER;
    v_id TEXT;
    v_delta BIGINT;
    v_next BIGINT;
    v_entry BIGINT;
    v_answer JSONB;
    v_changed INTEGER := 0;
    v_rows INTEGER;
    -- What to write.
    l_id BIGINT[] := '{}'; l_user TEXT[] := '{}'; l_kind TEXT[] := '{}'; l_amount BIGINT[] := '{}';
    l_after BIGINT[] := '{}'; l_version BIGINT[] := '{}'; l_reason TEXT[] := '{}'; l_reference TEXT[] := '{}';
    l_key TEXT[] := '{}'; l_owner TEXT[] := '{}'; l_fence BIGINT[] := '{}';
    x_event TEXT[] := '{}'; x_user TEXT[] := '{}'; x_payload TEXT[] := '{}';
    a_owner TEXT[] := '{}'; a_details TEXT[] := '{}'; a_user TEXT[] := '{}';
    s_owner TEXT[] := '{}'; s_key TEXT[] := '{}'; s_status BIGINT[] := '{}'; s_resp TEXT[] := '{}';
    r_user INTEGER[] := '{}'; r_idx INTEGER[] := '{}'; r_outcome TEXT[] := '{}'; r_resp TEXT[] := '{}';
BEGIN
    IF p_sync IS NOT NULL THEN
        PERFORM set_config('synchronous_commit', p_sync, true);
    END IF;
    IF coalesce(array_length(p_users, 1), 0) = 0 THEN
        RETURN;
    END IF;

    SELECT array_agg(b.ord::INTEGER ORDER BY b.ord, e.ord), array_agg(e.ord::INTEGER - 1 ORDER BY b.ord, e.ord),
           array_agg(e.value->>'actor' ORDER BY b.ord, e.ord), array_agg(e.value->>'key' ORDER BY b.ord, e.ord),
           array_agg(e.value->>'hash' ORDER BY b.ord, e.ord), array_agg(e.value->>'kind' ORDER BY b.ord, e.ord),
           array_agg((e.value->>'delta')::BIGINT ORDER BY b.ord, e.ord), array_agg(e.value->>'reason' ORDER BY b.ord, e.ord),
           array_agg(e.value->>'reference' ORDER BY b.ord, e.ord), array_agg((e.value->>'fence')::BIGINT ORDER BY b.ord, e.ord),
           array_agg(e.value->>'event_id' ORDER BY b.ord, e.ord)
      INTO c_user, c_idx, c_owner, c_key, c_hash, c_kind, c_delta, c_reason, c_reference, c_fence, c_event
      FROM jsonb_array_elements(p_batches) WITH ORDINALITY AS b(batch, ord),
           jsonb_array_elements(b.batch) WITH ORDINALITY AS e(value, ord);
    n := coalesce(array_length(c_user, 1), 0);

    -- 1. Lock, then read, the wallets.
    PERFORM 1 FROM wallets w WHERE w.user_id = ANY (p_users) ORDER BY w.user_id COLLATE "C" FOR UPDATE;
    SELECT array_agg(w.balance ORDER BY t.ord), array_agg(w.version ORDER BY t.ord), array_agg(w.region ORDER BY t.ord)
      INTO w_balance, w_version, w_region
      FROM unnest(p_users) WITH ORDINALITY AS t(id, ord) LEFT JOIN wallets w ON w.user_id = t.id;
    w_read := w_version;

    -- 2. Claim the keys of commands whose wallet exists.
    WITH firsts AS (
        SELECT DISTINCT ON (t.o, t.k) t.o, t.k, t.h
          FROM unnest(c_owner, c_key, c_hash, c_user) WITH ORDINALITY AS t(o, k, h, u, ord)
         WHERE w_version[t.u] IS NOT NULL
         ORDER BY t.o, t.k, t.ord
    ), ins AS (
        INSERT INTO idempotency_keys (owner, key, request_hash, status, response, created_at_ms)
        SELECT f.o, f.k, f.h, 0, '', p_now FROM firsts f ORDER BY f.o, f.k
        ON CONFLICT (owner, key) DO NOTHING
        RETURNING owner || sep || key AS id
    )
    SELECT coalesce(array_agg(ins.id), '{}') INTO v_claimed FROM ins;

    -- 3. The keys this call did not claim, as stored.
    SELECT array_agg(k.key IS NOT NULL ORDER BY t.ord), array_agg(k.request_hash ORDER BY t.ord),
           array_agg(k.response ORDER BY t.ord)
      INTO k_found, k_hash, k_resp
      FROM unnest(c_owner, c_key) WITH ORDINALITY AS t(o, k, ord)
      LEFT JOIN idempotency_keys k ON k.owner = t.o AND k.key = t.k;

    -- 4. Decide.
    FOR i IN 1 .. n LOOP
        u := c_user[i];
        v_id := c_owner[i] || sep || c_key[i];
        r_user := r_user || (u - 1);
        r_idx := r_idx || c_idx[i];
        IF v_id = ANY (v_claimed) THEN
            IF v_seen ? v_id THEN
                -- After the claim: the claimer's own repeat, or another
                -- user's use of the key (another request by its hash).
                IF (v_seen ->> v_id)::INTEGER = u THEN
                    r_outcome := r_outcome || 'repeat'::TEXT; r_resp := r_resp || NULL::TEXT;
                ELSE
                    r_outcome := r_outcome || 'mismatch'::TEXT; r_resp := r_resp || NULL::TEXT;
                END IF;
                CONTINUE;
            ELSIF w_version[u] IS NULL THEN
                -- No wallet, before the claim: the key did not exist yet.
                r_outcome := r_outcome || 'missing'::TEXT; r_resp := r_resp || NULL::TEXT;
                CONTINUE;
            END IF;
            v_seen := v_seen || jsonb_build_object(v_id, u);
        ELSE
            IF NOT k_found[i] THEN
                r_outcome := r_outcome || 'missing'::TEXT; r_resp := r_resp || NULL::TEXT;
            ELSIF k_hash[i] <> c_hash[i] THEN
                r_outcome := r_outcome || 'mismatch'::TEXT; r_resp := r_resp || NULL::TEXT;
            ELSE
                r_outcome := r_outcome || 'stored'::TEXT; r_resp := r_resp || k_resp[i];
            END IF;
            CONTINUE;
        END IF;

        v_delta := c_delta[i];
        v_next := w_balance[u] + v_delta;
        IF v_next >= 0 AND v_next <= p_max THEN
            w_balance[u] := v_next;
            w_version[u] := w_version[u] + 1;
            v_changed := v_changed + CASE WHEN w_version[u] = w_read[u] + 1 THEN 1 ELSE 0 END;
            v_entry := nextval('ledger_entries_id_seq');
            l_id := l_id || v_entry; l_user := l_user || p_users[u]; l_kind := l_kind || c_kind[i];
            l_amount := l_amount || v_delta; l_after := l_after || v_next; l_version := l_version || w_version[u];
            l_reason := l_reason || c_reason[i]; l_reference := l_reference || c_reference[i];
            l_key := l_key || c_key[i]; l_owner := l_owner || c_owner[i]; l_fence := l_fence || c_fence[i];
            x_event := x_event || c_event[i];
            x_user := x_user || p_users[u];
            x_payload := x_payload || jsonb_build_object('event_id', c_event[i], 'type', 'balance_updated',
                'user_id', p_users[u], 'region', w_region[u], 'balance', v_next, 'version', w_version[u],
                'delta', v_delta, 'entry_id', v_entry, 'entry_kind', c_kind[i], 'occurred_at_ms', p_now)::TEXT;
            IF c_kind[i] = 'adjust' THEN
                a_owner := a_owner || c_owner[i];
                a_user := a_user || p_users[u];
                a_details := a_details || jsonb_build_object('amount', v_delta, 'reason', to_jsonb(c_reason[i]),
                    'entry_id', v_entry)::TEXT;
            END IF;
            v_answer := jsonb_build_object('format', 'answer.v1', 'outcome', 'applied',
                'entry', jsonb_build_object('id', v_entry, 'user_id', p_users[u],
                    'kind', c_kind[i], 'amount', v_delta, 'balance_after', v_next, 'version', w_version[u],
                    'reason', to_jsonb(c_reason[i]), 'reference', to_jsonb(c_reference[i]),
                    'actor', c_owner[i], 'created_at_ms', p_now));
            s_status := s_status || 200::BIGINT;
        ELSE
            v_answer := jsonb_build_object('format', 'answer.v1', 'outcome', 'refused',
                'refusal', jsonb_build_object(
                    'code', CASE WHEN v_delta < 0 THEN 'insufficient_funds' ELSE 'balance_limit_exceeded' END,
                    'balance', w_balance[u], 'requested', abs(v_delta)));
            s_status := s_status || 409::BIGINT;
        END IF;
        s_owner := s_owner || c_owner[i];
        s_key := s_key || c_key[i];
        s_resp := s_resp || v_answer::TEXT;
        r_outcome := r_outcome || 'fresh'::TEXT;
        r_resp := r_resp || v_answer::TEXT;
    END LOOP;

    -- 5. Write.
    IF array_length(l_id, 1) > 0 THEN
        INSERT INTO ledger_entries (id, user_id, kind, amount, balance_after, version, reason, reference,
                                    idempotency_key, actor, lock_fence, created_at_ms)
            SELECT t.*, p_now FROM unnest(l_id, l_user, l_kind, l_amount, l_after, l_version, l_reason,
                                          l_reference, l_key, l_owner, l_fence) AS t;
        INSERT INTO outbox (event_id, topic, key, payload, created_at_ms)
            SELECT t.e, 'balance_updated', t.u, t.p, p_now FROM unnest(x_event, x_user, x_payload) AS t(e, u, p);
    END IF;
    IF array_length(a_owner, 1) > 0 THEN
        INSERT INTO audit_log (actor, action, target, details, created_at_ms)
            SELECT t.o, 'wallet.adjust', t.u, t.d, p_now FROM unnest(a_owner, a_user, a_details) AS t(o, u, d);
    END IF;
    IF array_length(s_owner, 1) > 0 THEN
        UPDATE idempotency_keys k SET status = t.s, response = t.r
          FROM unnest(s_owner, s_key, s_status, s_resp) AS t(o, k, s, r)
         WHERE k.owner = t.o AND k.key = t.k;
    END IF;
    IF v_changed > 0 THEN
        UPDATE wallets w SET balance = t.b, version = t.v, updated_at_ms = p_now
          FROM unnest(p_users, w_balance, w_version, w_read) AS t(id, b, v, rv)
         WHERE w.user_id = t.id AND t.v <> t.rv AND w.version = t.rv;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        IF v_rows <> v_changed THEN
            RAISE EXCEPTION 'a wallet changed under its row lock (% of % updated)', v_rows, v_changed;
        END IF;
    END IF;

    RETURN QUERY SELECT * FROM unnest(r_user, r_idx, r_outcome, r_resp);
END
$fn$;

-- Its statements take arrays whose sizes the planner cannot see; a custom
-- plan per call bought nothing and cost about a sixth of the server's time
-- under the deduct load (perf: GetCachedPlan, standard_planner).
ALTER FUNCTION walletctl_apply_group(TEXT[], JSONB, BIGINT, BIGINT, TEXT) SET plan_cache_mode = force_generic_plan;
