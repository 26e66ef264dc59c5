#!/usr/bin/env python3
"""A provider simulator for outboxd's tests.

One HTTP/1.1 server on 127.0.0.1 that behaves like each provider API as
documented (MOOST, Novu, MoEngage, Customer Insights - Journeys, Pusher
Beams) plus a webhook sink, routed by path. It checks method, path, headers,
auth and body fields, answers with the documented codes and bodies, enforces
MoEngage's 1000/min with x-ratelimit-* headers and Novu's token bucket with
RateLimit-* headers, keeps Novu's idempotency semantics, and issues and
expires MOOST tokens. Faults are switchable at run time. Every request is
recorded, with the ways it broke the documented API.

Start: provider_sim.py [--port N] [--seed S] [--tls-cert F --tls-key F]
Prints "PORT <n>" on stdout, then serves until SIGTERM or stdin closes.

Control, on the same port:
  POST /_sim/config    merge settings (faults, limits, credentials)
  GET  /_sim/requests?since=SEQ
  GET  /_sim/stats
  POST /_sim/reset
"""

import argparse
import base64
import hashlib
import json
import os
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

DEFAULT_CREDENTIALS = {
    "moost_client_id": "moost-client",
    "moost_client_secret": "moost-secret",
    "novu_api_key": "novu-key",
    "moengage_workspace": "WS123",
    "moengage_api_key": "moe-key",
    "moengage_data_api_key": "moe-data-key",
}


class NovuSpec:
    """The parts of Novu's OpenAPI document the simulator checks against."""

    def __init__(self, path):
        self.doc = None
        self.ops = []
        if not path or not os.path.exists(path):
            if path:
                print(f"provider_sim: no Novu OpenAPI document at {path}", file=sys.stderr)
            return
        with open(path) as f:
            self.doc = json.load(f)
        for p, item in self.doc.get("paths", {}).items():
            for method, op in item.items():
                if not isinstance(op, dict):
                    continue
                rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"
                self.ops.append((method.upper(), re.compile(rx), p, op))

    def resolve(self, schema):
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            ref = schema["$ref"]
            node = self.doc
            for part in ref.lstrip("#/").split("/"):
                node = node.get(part, {})
            schema = node
            seen += 1
        return schema

    def check(self, method, path, body):
        """Violations of the spec for a request; [] if none or no spec."""
        if self.doc is None:
            return []
        for m, rx, template, op in self.ops:
            if m == method and rx.match(path):
                break
        else:
            return [f"openapi: no operation {method} {path}"]
        out = []
        rb = op.get("requestBody")
        if rb:
            schema = self.resolve(rb.get("content", {}).get("application/json", {}).get("schema", {}))
            out += self.check_object(schema, body, "body")
        return out

    def check_object(self, schema, value, where):
        schema = self.resolve(schema)
        out = []
        if schema.get("type") == "object" or "properties" in schema:
            if not isinstance(value, dict):
                return [f"openapi: {where} must be an object"]
            for req in schema.get("required", []):
                if req not in value:
                    out.append(f"openapi: {where}.{req} is required")
            props = schema.get("properties", {})
            for k, v in value.items():
                if k in props:
                    ps = self.resolve(props[k])
                    if "enum" in ps and v not in ps["enum"]:
                        out.append(f"openapi: {where}.{k} must be one of {ps['enum']}")
                    t = ps.get("type")
                    if t == "string" and not isinstance(v, str):
                        out.append(f"openapi: {where}.{k} must be a string")
                    if t == "object" and not isinstance(v, dict):
                        out.append(f"openapi: {where}.{k} must be an object")
        return out


class State:
    def __init__(self, seed, novu_spec):
        self.lock = threading.Lock()
        self.seed = seed
        self.novu_spec = novu_spec
        self.reset()

    def reset(self):
        self.rng = random.Random(self.seed)
        self.records = []
        self.faults = {}
        self.credentials = dict(DEFAULT_CREDENTIALS)
        self.moost_token_ttl = 86400.0
        self.moost_tokens = {}  # token -> exp
        self.moost_missing = set()
        self.moost_forbidden = set()
        self.moengage_limit = 1000
        self.moengage_window = 60.0
        self.moengage_window_start = 0.0
        self.moengage_count = 0
        self.novu_capacity = 20.0
        self.novu_rate = 20.0
        self.novu_tokens = 20.0
        self.novu_last = time.time()
        self.novu_idem = {}  # key -> {"hash", "status", "body", "done", "at"}
        self.storms = {}  # provider -> reset time
        self.webhook_status = 200
        self.connections = 0
        self.counts = {}

    def fault(self, provider):
        f = dict(self.faults.get("*", {}))
        f.update(self.faults.get(provider, {}))
        return f


STATE = None


def provider_of(path):
    if path.startswith("/auth/token/v1") or path.startswith("/pushnotifications/"):
        return "moost"
    if path.startswith("/v1/subscribers/"):
        return "novu"
    if path.startswith("/v1/recommendations/") or path.startswith("/v1/event/"):
        return "moengage"
    if "/pushdatareceiver/events" in path:
        return "customer_insights"
    if path.startswith("/reporting_api/"):
        return "pusher_beams"
    if path.startswith("/hook"):
        return "webhook"
    return "unknown"


def make_jwt(exp):
    def b64(d):
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    payload = {"sub": "outboxd-test", "exp": int(exp), "iat": int(time.time()),
               "n": STATE.rng.random()}
    sig = base64.urlsafe_b64encode(hashlib.sha256(json.dumps(payload).encode()).digest()).rstrip(b"=").decode()
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(payload)}.{sig}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "provider-sim"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with STATE.lock:
            STATE.connections += 1
            self.conn_id = STATE.connections

    # -- plumbing --------------------------------------------------------

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, body=b"", headers=None, slow_ms=0):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        if body and not any(k.lower() == "content-type" for k in (headers or {})):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if slow_ms and body:
            for i in range(0, len(body), 16):
                self.wfile.write(body[i:i + 16])
                self.wfile.flush()
                time.sleep(slow_ms / 1000.0)
        else:
            self.wfile.write(body)
        return status

    def record(self, provider, method, path, query, body, status, fault, violations):
        with STATE.lock:
            seq = len(STATE.records) + 1
            STATE.records.append({
                "seq": seq, "conn": self.conn_id, "time": self.arrived, "provider": provider,
                "method": method, "path": path, "query": query,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"), "status": status, "fault": fault,
                "violations": violations,
            })
            key = f"{provider} {status}"
            STATE.counts[key] = STATE.counts.get(key, 0) + 1

    def hang(self):
        # Hold the connection, answering nothing, until the client gives up.
        self.connection.settimeout(60)
        try:
            while self.connection.recv(1024):
                pass
        except OSError:
            pass
        self.close_connection = True

    def drop(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- dispatch --------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        self.arrived = time.time()
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        body = self.read_body()
        if path.startswith("/_sim/"):
            return self.control(method, path, query, body)
        provider = provider_of(path)
        f = STATE.fault(provider)
        with STATE.lock:
            roll = STATE.rng.random()
            roll2 = STATE.rng.random()
        if f.get("refuse"):
            self.record(provider, method, path, query, body, None, "refuse", [])
            return self.drop()
        if f.get("hang") or (roll2 < f.get("hang_rate", 0) and roll >= f.get("reset_rate", 0)):
            self.record(provider, method, path, query, body, None, "hang", [])
            return self.hang()
        if roll < f.get("reset_rate", 0):
            self.record(provider, method, path, query, body, None, "reset", [])
            return self.drop()
        if f.get("delay_ms"):
            time.sleep(f["delay_ms"] / 1000.0)
        if 1 - roll2 < f.get("error_rate", 0):
            status = self.reply(503, {"message": "simulated outage"})
            self.record(provider, method, path, query, body, status, "error", [])
            return
        storm = f.get("storm_429")
        if storm:
            with STATE.lock:
                until = STATE.storms.setdefault(provider, time.time() + storm.get("reset_in_s", 5))
            if time.time() < until:
                status = self.reply(429, {"message": "storm"}, self.storm_headers(provider, until))
                self.record(provider, method, path, query, body, status, "storm_429", [])
                return
        handler = {
            "moost": self.moost, "novu": self.novu, "moengage": self.moengage,
            "customer_insights": self.customer_insights, "pusher_beams": self.pusher,
            "webhook": self.webhook,
        }.get(provider)
        violations = []
        if handler is None:
            status = self.reply(404, {"message": f"no such API: {path}"})
            violations.append(f"unknown path {path}")
        else:
            status = handler(method, path, query, body, violations, f.get("slow_body_ms", 0))
        self.record(provider, method, path, query, body, status, None, violations)

    def storm_headers(self, provider, until):
        left = max(0, int(until - time.time() + 0.999))
        if provider == "moengage":
            return {"x-ratelimit-limit": STATE.moengage_limit, "x-ratelimit-remaining": 0,
                    "x-ratelimit-reset": int(until + 0.999)}
        if provider == "novu":
            return {"Retry-After": left, "RateLimit-Limit": int(STATE.novu_capacity),
                    "RateLimit-Remaining": 0, "RateLimit-Reset": left}
        return {"Retry-After": left}

    def control(self, method, path, query, body):
        if path == "/_sim/config" and method == "POST":
            try:
                cfg = json.loads(body or b"{}")
            except ValueError:
                return self.reply(400, {"message": "config must be JSON"})
            with STATE.lock:
                if "faults" in cfg:
                    STATE.faults = cfg["faults"]
                    STATE.storms = {}
                if "moengage_limit" in cfg:
                    STATE.moengage_limit = int(cfg["moengage_limit"])
                if "moengage_window_s" in cfg:
                    STATE.moengage_window = float(cfg["moengage_window_s"])
                if "novu_bucket" in cfg:
                    STATE.novu_capacity = float(cfg["novu_bucket"].get("capacity", 20))
                    STATE.novu_rate = float(cfg["novu_bucket"].get("per_s", 20))
                    STATE.novu_tokens = STATE.novu_capacity
                if "moost_token_ttl_s" in cfg:
                    STATE.moost_token_ttl = float(cfg["moost_token_ttl_s"])
                if "moost_missing_ids" in cfg:
                    STATE.moost_missing = set(cfg["moost_missing_ids"])
                if "moost_forbidden_ids" in cfg:
                    STATE.moost_forbidden = set(cfg["moost_forbidden_ids"])
                if "credentials" in cfg:
                    STATE.credentials.update(cfg["credentials"])
                if "webhook_status" in cfg:
                    STATE.webhook_status = int(cfg["webhook_status"])
                if "expire_moost_tokens" in cfg:
                    STATE.moost_tokens = {t: 0 for t in STATE.moost_tokens}
                if "seed" in cfg:
                    STATE.rng = random.Random(cfg["seed"])
            return self.reply(200, {"ok": True})
        if path == "/_sim/requests" and method == "GET":
            since = int(parse_qs(query).get("since", ["0"])[0])
            with STATE.lock:
                recs = [r for r in STATE.records if r["seq"] > since]
            return self.reply(200, {"requests": recs})
        if path == "/_sim/stats" and method == "GET":
            with STATE.lock:
                return self.reply(200, {"counts": STATE.counts, "connections": STATE.connections,
                                        "requests": len(STATE.records)})
        if path == "/_sim/reset" and method == "POST":
            with STATE.lock:
                STATE.reset()
            return self.reply(200, {"ok": True})
        return self.reply(404, {"message": "unknown control path"})

    # -- providers -------------------------------------------------------

    def json_body(self, body, violations):
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            violations.append("Content-Type must be application/json")
        try:
            return json.loads(body)
        except ValueError:
            violations.append("body is not JSON")
            return None

    def moost(self, method, path, query, body, violations, slow):
        if path == "/auth/token/v1":
            if method != "GET":
                violations.append("token endpoint is GET")
            q = parse_qs(query)
            ok = (q.get("clientId", [""])[0] == STATE.credentials["moost_client_id"] and
                  q.get("clientSecret", [""])[0] == STATE.credentials["moost_client_secret"])
            if not ok:
                return self.reply(401, {"message": "invalid client credentials"})
            exp = time.time() + STATE.moost_token_ttl
            token = make_jwt(exp)
            with STATE.lock:
                STATE.moost_tokens[token] = exp
            return self.reply(200, {"access_token": token}, slow_ms=slow)
        m = re.match(r"^/pushnotifications/([^/]+)/interactions/v1$", path)
        if not m or method != "POST":
            violations.append("expected POST /pushnotifications/{id}/interactions/v1")
            return self.reply(404, {"message": "not found"})
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with STATE.lock:
            exp = STATE.moost_tokens.get(token)
        if exp is None or exp < time.time():
            return self.reply(403, {"message": "token invalid"})
        nid = m.group(1)
        if nid in STATE.moost_forbidden:
            return self.reply(401, {"message": "not authorized for this notification"})
        doc = self.json_body(body, violations)
        if not isinstance(doc, dict) or not isinstance(doc.get("actionQualifier"), str) or not doc["actionQualifier"]:
            violations.append("actionQualifier must be a non-empty string")
            return self.reply(400, {"message": "actionQualifier required"})
        extra = set(doc) - {"actionQualifier", "userId"}
        if extra:
            violations.append(f"unknown fields {sorted(extra)}")
        if nid in STATE.moost_missing:
            return self.reply(404, {"message": "notification not found"})
        return self.reply(200, {"status": "saved"}, slow_ms=slow)

    def novu(self, method, path, query, body, violations, slow):
        m = re.match(r"^/v1/subscribers/([^/]+)/messages/([^/]+)/actions/([^/]+)$", path)
        now = time.time()
        with STATE.lock:
            STATE.novu_tokens = min(STATE.novu_capacity,
                                    STATE.novu_tokens + (now - STATE.novu_last) * STATE.novu_rate)
            STATE.novu_last = now
            if STATE.novu_tokens >= 1:
                STATE.novu_tokens -= 1
                limited = False
            else:
                limited = True
            remaining = int(STATE.novu_tokens)
            reset = max(1, int((STATE.novu_capacity - STATE.novu_tokens) / STATE.novu_rate + 0.999))
        rl = {"RateLimit-Limit": int(STATE.novu_capacity), "RateLimit-Remaining": remaining,
              "RateLimit-Reset": reset,
              "RateLimit-Policy": f"{int(STATE.novu_capacity)};w=1"}
        if limited:
            rl["Retry-After"] = reset
            return self.reply(429, {"statusCode": 429, "message": "ThrottlerException: Too Many Requests"}, rl)
        if not m or method != "POST":
            violations.append("expected POST /v1/subscribers/{s}/messages/{m}/actions/{type}")
            return self.reply(404, {"statusCode": 404, "message": "not found", "path": path}, rl)
        if self.headers.get("Authorization") != "ApiKey " + STATE.credentials["novu_api_key"]:
            return self.reply(401, {"statusCode": 401, "message": "API Key not found", "path": path,
                                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ")}, rl)
        if m.group(3) not in ("primary", "secondary"):
            violations.append(f"type {m.group(3)} is not primary or secondary")
        doc = self.json_body(body, violations)
        violations += STATE.novu_spec.check("POST", path, doc)
        if not isinstance(doc, dict) or doc.get("status") not in ("pending", "done"):
            violations.append("status must be pending or done")
            return self.reply(400, {"statusCode": 400, "message": ["status must be pending or done"],
                                    "path": path}, rl)
        if "payload" in doc and not isinstance(doc["payload"], dict):
            violations.append("payload must be an object")
        key = self.headers.get("Idempotency-Key")
        if not key:
            violations.append("Idempotency-Key missing")
        elif len(key) > 255:
            violations.append("Idempotency-Key longer than 255")
        digest = hashlib.sha256(body).hexdigest()
        if key:
            with STATE.lock:
                entry = STATE.novu_idem.get(key)
                if entry is None:
                    STATE.novu_idem[key] = {"hash": digest, "done": False}
            if entry is not None:
                if entry["hash"] != digest:
                    return self.reply(422, {"statusCode": 422, "message": "Request with the same idempotency key but different body", "path": path}, rl)
                if not entry["done"]:
                    return self.reply(409, {"statusCode": 409, "message": "Request with the same idempotency key is being processed"}, dict(rl, **{"Retry-After": 1}))
                h = dict(rl)
                h["Idempotency-Replay"] = "true"
                h["Idempotency-Key"] = key
                return self.reply(entry["status"], entry["body"], h)
        f = STATE.fault("novu")
        if STATE.rng.random() < f.get("cached_error_rate", 0):
            status, answer = 500, {"statusCode": 500, "message": "Internal server error"}
        else:
            status = 201
            answer = {"data": {"_id": hashlib.md5(path.encode()).hexdigest()[:24],
                               "_environmentId": "env", "_organizationId": "org",
                               "_notificationId": "n", "_subscriberId": m.group(1),
                               "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "transactionId": "t", "channel": "in_app", "read": False,
                               "seen": False, "cta": {"action": {"status": doc["status"]}},
                               "status": "sent"}}
        if key:
            with STATE.lock:
                STATE.novu_idem[key] = {"hash": digest, "done": True, "status": status, "body": answer}
        h = dict(rl)
        if key:
            h["Idempotency-Key"] = key
        return self.reply(status, answer, h, slow_ms=slow)

    def moengage(self, method, path, query, body, violations, slow):
        ws = STATE.credentials["moengage_workspace"]
        now = time.time()
        with STATE.lock:
            if now - STATE.moengage_window_start >= STATE.moengage_window:
                STATE.moengage_window_start = now - (now % STATE.moengage_window if STATE.moengage_window >= 1 else 0)
                STATE.moengage_count = 0
            STATE.moengage_count += 1
            over = STATE.moengage_count > STATE.moengage_limit
            remaining = max(0, STATE.moengage_limit - STATE.moengage_count)
            reset = int(STATE.moengage_window_start + STATE.moengage_window + 0.999)
        rl = {"x-ratelimit-limit": STATE.moengage_limit, "x-ratelimit-remaining": remaining,
              "x-ratelimit-reset": reset}
        if over:
            violations.append("request over the 1000/min limit")
            return self.reply(429, b"", rl)
        if self.headers.get("MOE-APPKEY") != ws:
            violations.append("MOE-APPKEY missing or wrong")
        m = re.match(r"^/v1/recommendations/([^/]+)$", path)
        if m:
            if method != "GET":
                violations.append("recommendations are fetched with GET")
            expected = "Basic " + base64.b64encode(f"{ws}:{STATE.credentials['moengage_api_key']}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self.reply(401, {"error-code": "401", "message": "Unauthorized"}, rl)
            rid = m.group(1)
            if rid.startswith("missing"):
                return self.reply(400, {"error-code": "400", "message": "recommendation does not exist"}, rl)
            return self.reply(200, {"id": rid, "db_name": "demo", "recommendation_type": "trending_item",
                                    "name": f"reco {rid}", "status": "active"}, rl, slow_ms=slow)
        m = re.match(r"^/v1/event/([^/]+)$", path)
        if not m or method != "POST":
            violations.append("unknown MoEngage path")
            return self.reply(404, {"error-code": "404", "message": "not found"}, rl)
        if m.group(1) != ws:
            violations.append("workspace id in path is wrong")
        expected = "Basic " + base64.b64encode(f"{ws}:{STATE.credentials['moengage_data_api_key']}".encode()).decode()

        def fail(status, msg):
            return self.reply(status, {"status": "fail", "error": {"message": msg, "type": "ValidationError",
                                                                     "request_id": "sim"}}, rl)
        if self.headers.get("Authorization") != expected:
            return fail(401, "Authentication required")
        if len(body) > 100 * 1000:
            violations.append("body over 100 KB")
            return fail(413, "payload too large")
        doc = self.json_body(body, violations)
        if not isinstance(doc, dict) or doc.get("type") != "event" or not doc.get("customer_id"):
            violations.append("type event and customer_id required")
            return fail(400, "type and customer_id are required")
        for a in doc.get("actions") or []:
            if str(a.get("action", "")).startswith("moe_"):
                violations.append("action name starts with moe_")
                return fail(400, "reserved action name")
            if len(a.get("attributes", {})) > 100:
                violations.append("more than 100 attributes")
                return fail(400, "too many attributes")
            if isinstance(a.get("current_time"), (int, float)) and a["current_time"] > now + 60:
                violations.append("future timestamp")
                return fail(400, "future timestamp")
        return self.reply(200, {"status": "success"}, rl, slow_ms=slow)

    def customer_insights(self, method, path, query, body, violations, slow):
        m = re.match(r"^/api/v1\.0/orgs/([^/]+)/pushdatareceiver/events$", path)
        if not m or method != "POST":
            violations.append("expected POST /api/v1.0/orgs/{org}/pushdatareceiver/events")
            return self.reply(404, b"")
        if not GUID.match(m.group(1)):
            violations.append("orgId is not a GUID")
            return self.reply(400, {"error": "invalid org"})
        doc = self.json_body(body, violations)
        ok = (isinstance(doc, dict) and isinstance(doc.get("TrackingId"), str) and GUID.match(doc["TrackingId"])
              and isinstance(doc.get("DeviceToken"), str) and doc["DeviceToken"]
              and isinstance(doc.get("PushNotificationStatus"), int)
              and not isinstance(doc.get("PushNotificationStatus"), bool))
        if not ok:
            violations.append("TrackingId GUID, DeviceToken and integer PushNotificationStatus required")
            return self.reply(400, {"error": "invalid event"})
        if set(doc.get("TrackingId")) <= set("0-"):
            violations.append("all-zero TrackingId sent")
        return self.reply(202, b"", slow_ms=slow)

    def pusher(self, method, path, query, body, violations, slow):
        m = re.match(r"^/reporting_api/v2/instances/([^/]+)/events$", path)
        if not m or method != "POST":
            violations.append("expected POST /reporting_api/v2/instances/{id}/events")
            return self.reply(404, {"error": "Not found", "description": "no such path"})
        if not GUID.match(m.group(1)):
            violations.append("instance id is not a UUID")
            return self.reply(400, {"error": "Bad request", "description": "Invalid instance id"})
        doc = self.json_body(body, violations)
        if doc is None:
            return self.reply(400, {"error": "Bad request", "description": "Invalid JSON"})
        problems = []
        if doc.get("event") not in ("delivery", "open"):
            problems.append("event must be delivery or open")
        for k in ("publishId", "deviceId"):
            if not isinstance(doc.get(k), str) or not doc[k]:
                problems.append(f"{k} is required")
        ts = doc.get("timestampSecs")
        if not isinstance(ts, int) or isinstance(ts, bool):
            problems.append("timestampSecs must be an integer")
        for k in ("appInBackground", "hasDisplayableContent", "hasData"):
            if k in doc and (not isinstance(doc[k], bool) or doc.get("event") != "delivery"):
                problems.append(f"{k} must be a boolean on delivery events")
        if problems:
            violations += problems
            return self.reply(400, {"error": "Bad request", "description": "; ".join(problems)})
        return self.reply(200, b"", slow_ms=slow)

    def webhook(self, method, path, query, body, violations, slow):
        return self.reply(STATE.webhook_status, {"ok": STATE.webhook_status < 300}, slow_ms=slow)


def main():
    global STATE
    here = os.path.dirname(os.path.abspath(__file__))
    default_spec = os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "specs", "novu-openapi.json"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--novu-spec", default=default_spec)
    args = ap.parse_args()
    STATE = State(args.seed, NovuSpec(args.novu_spec))

    class Server(ThreadingHTTPServer):
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = 256

    httpd = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print(f"PORT {httpd.server_address[1]}", flush=True)

    def stop(*_):
        threading.Thread(target=httpd.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def watch_stdin():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop()
    if not sys.stdin.isatty():
        threading.Thread(target=watch_stdin, daemon=True).start()
    httpd.serve_forever(poll_interval=0.05)
    sys.stdout.flush()
    os._exit(0)  # handler threads may still hold connections open


if __name__ == "__main__":
    main()
