"""schemathesis hooks for walletctl's contract test (scripts/contract).

Idempotency keys are per logical request: schemathesis reuses generated
values such as "0" with different bodies, which the server rightly refuses
with 422 idempotency_key_reused. A key that is valid by the schema gets a
unique suffix (staying valid); an invalid one is left alone, so negative
tests still send it.
"""
import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"^[!-~]{1,128}$")


@schemathesis.hook
def before_call(ctx, case, kwargs):
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.match(key):
        headers["Idempotency-Key"] = key[:95] + "-" + uuid.uuid4().hex
        case.headers = headers
