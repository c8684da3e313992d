#!/usr/bin/python3
"""One unary gRPC call with Debian's python3-grpcio (gRPC C-core), for interop tests.

    grpc-python-call.py SOCKET METHOD [AUTHORITY]

The request is an empty message (valid for any request type with no required fields). Prints
one JSON line: {"code": <grpc status number>, "details": ..., "response": <bytes as latin1>}.
AUTHORITY, when given, is sent as :authority (grpc.default_authority).
"""
import json
import sys

import grpc


def main() -> None:
    sock, method = sys.argv[1], sys.argv[2]
    options = [("grpc.default_authority", sys.argv[3])] if len(sys.argv) > 3 else []
    with grpc.insecure_channel(f"unix:{sock}", options=options) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            response = call(b"", timeout=10)
            print(json.dumps({"code": 0, "details": "", "response": response.decode("latin1")}))
        except grpc.RpcError as err:
            print(json.dumps({"code": err.code().value[0], "details": err.details(), "response": ""}))


if __name__ == "__main__":
    main()
