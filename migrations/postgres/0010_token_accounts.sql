-- A token bound to advertiser accounts (wallet user ids, comma-separated)
-- reaches only their wallets and campaigns; '' is unbound (operator and
-- service tokens).
ALTER TABLE api_tokens ADD COLUMN accounts TEXT NOT NULL DEFAULT '';
