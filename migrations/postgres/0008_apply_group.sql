-- Group commit (issue 10): several users' batches in one transaction and
-- one call. The caller sorts the users by id, so every transaction locks
-- wallet rows in the same order; each user's batch is applied by
-- walletctl_apply_batch exactly as on its own, and answers carry the
-- user's position.
CREATE FUNCTION walletctl_apply_group(p_users TEXT[], p_batches JSONB, p_now BIGINT, p_max BIGINT, p_sync TEXT)
RETURNS TABLE (o_user INTEGER, o_idx INTEGER, o_outcome TEXT, o_response TEXT)
LANGUAGE plpgsql AS $fn$
DECLARE
    i INTEGER;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_users, 1), 0) LOOP
        RETURN QUERY
            SELECT i - 1, r.o_idx, r.o_outcome, r.o_response
              FROM walletctl_apply_batch(p_users[i], p_batches -> (i - 1), p_now, p_max, p_sync) r;
    END LOOP;
END
$fn$;
