"""schemathesis hooks for scripts/schemathesis (loaded through SCHEMATHESIS_HOOKS).

An Idempotency-Key is one request's: the same key with another body is a 422, as it should be. The
fuzzer draws keys from openapi.yaml's pattern and would send the same few ("0", "!") with every body,
so each valid key it sends gets a unique suffix (still valid), and the bodies it checks are judged on
their own. Keys the pattern rules out are sent as drawn, so that their 400 is still checked.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"[!-~]{1,255}\Z")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            key = headers[name]
            if isinstance(key, str) and VALID_KEY.match(key):
                headers[name] = key[:222] + "-" + uuid.uuid4().hex
