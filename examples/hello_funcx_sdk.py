"""Run a Python function on your endpoint with the funcX Python SDK 0.3.x, against the
local funcX service, using the login of `funcx-endpoint login`.

    pip install funcx==0.3.7
    python3 examples/hello_funcx_sdk.py [ENDPOINT_NAME]

The SDK reads no `config.yaml`: the service address and the token come from the funcX
home (`FUNCX_HOME`, default `~/.funcx`) that `funcx-endpoint` uses. The local service
issues its own tokens, so the SDK gets them as authorizers instead of logging in to
Globus itself.
"""
import json
import os
import sys
import time

import globus_sdk
from funcx.sdk.client import FuncXClient


def hello(a, b):
    import platform
    import sys

    return "hello from %s: %d + %d = %d (Python %s)" % (
        platform.node(), a, b, a + b, sys.version.split()[0])


def _setting(home, name, key, default):
    """`key` of the endpoint's or the global config.yaml (plain `key: value` lines)."""
    for path in (os.path.join(home, name, "config.yaml"), os.path.join(home, "config.yaml")):
        try:
            with open(path) as f:
                for line in f:
                    k, _, value = line.partition(":")
                    value = value.split("#")[0].strip().strip("'\"")
                    if k.strip() == key and value and value != "null":
                        return value
        except FileNotFoundError:
            pass
    return default


def main():
    home = os.environ.get("FUNCX_HOME", os.path.expanduser("~/.funcx"))
    name = sys.argv[1] if len(sys.argv) > 1 else "default"
    with open(os.path.join(home, "credentials", "funcx_sdk_tokens.json")) as f:
        token = json.load(f)["funcx_service"]["access_token"]
    with open(os.path.join(home, name, "endpoint.json")) as f:
        endpoint_id = json.load(f)["endpoint_id"]
    service = _setting(home, name, "service_address", "http://127.0.0.1:8400/v2").rstrip("/")
    auth = _setting(home, name, "auth_address", "http://127.0.0.1:8400/auth").rstrip("/")
    # the SDK asks the auth server's userinfo: the local service's, not Globus'
    os.environ["GLOBUS_SDK_SERVICE_URL_AUTH"] = auth + "/"
    ws = service.replace("http", "ws", 1).rsplit("/v2", 1)[0] + "/ws/v2/"
    authorizer = globus_sdk.AccessTokenAuthorizer(token)
    fxc = FuncXClient(
        funcx_service_address=service,
        results_ws_uri=ws,
        fx_authorizer=authorizer,
        search_authorizer=authorizer,
        openid_authorizer=authorizer,
    )
    function_id = fxc.register_function(hello)
    task_id = fxc.run(2, 3, endpoint_id=endpoint_id, function_id=function_id)
    deadline = time.time() + 60
    while True:
        try:
            print(fxc.get_result(task_id))
            return
        except Exception as e:  # TaskPending until the result is there
            if "pending" not in str(e).lower() or time.time() > deadline:
                raise
            time.sleep(0.5)


if __name__ == "__main__":
    main()
