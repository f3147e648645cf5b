"""A JSOC export service on 127.0.0.1 over a synthetic archive, for the real ``drms`` client.

It answers the CGI endpoints drms (and sunpy's JSOC client through it) call, with the JSON
JSOC gives: ``checkAddress.sh`` (registered export addresses), ``jsoc_info?op=series_struct``
(prime keys, keywords, segments of ``aia.lev1_euv_12s`` and ``hmi.M_720s``),
``jsoc_info?op=rs_list`` (keyword values of a record set), ``jsoc_fetch?op=exp_request`` (a
staged export with an id, status 2 = queued) and ``op=exp_status`` (queued, then processing,
then 0 with the files' directory and names), and the exported files under ``/SUM.../``
(byte ranges, faults as in :mod:`farside_gan.testing.http_archive`).

Record sets follow DRMS syntax: ``series[T_REC selector][WAVELNTH list]{segment}``, comma-
separated lists of those; a selector is one time (the record whose slot holds it), ``t0/span@step``
(one record per step), ``t0-t1`` (every record in between) or a comma list of these; times as
``2011.01.01_00:00:00_UTC``, ``..._TAI`` or ``2011-01-01T00:00:02Z``.

Service behaviour on request: ``max_records`` (an export with more records is refused with
status 3, "too large"), ``busy`` (the next N exports answer status 7, "too many pending
requests"), ``stage_polls`` (status checks before an export is ready), ``expire(id)``.
Every request is logged in ``requests`` with its ``op``, ``ds`` and ``requestid``.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from astropy.io import fits

from farside_gan.core.instruments import SERIES, utc_time
from farside_gan.testing.http_archive import BadRequest, FaultyHandler, FaultyServer

#: A one-time selector picks the record nearest it within half a slot. JSOC's AIA slots are 12 s,
#: but the synthetic archive's T_RECs sit up to ~10 s after the nominal time (T_OBS rounded), so
#: the fake's AIA slot is a minute wide.
SLOT_S = {"aia.lev1_euv_12s": 60.0, "hmi.m_720s": 720.0}
PRIMEKEYS = {"aia.lev1_euv_12s": ["T_REC", "WAVELNTH"], "hmi.m_720s": ["T_REC", "CAMERA"]}
SEGMENTS = {"aia.lev1_euv_12s": "image", "hmi.m_720s": "magnetogram"}
KEYWORDS = ("T_REC", "T_OBS", "DATE-OBS", "QUALITY", "WAVELNTH", "TELESCOP", "INSTRUME", "CADENCE",
            "EXPTIME")
TIME_KEYS = ("T_REC", "T_OBS", "DATE-OBS")
INT_KEYS = ("QUALITY", "WAVELNTH", "CAMERA")


def parse_jsoc_time(text: str) -> datetime:
    """A DRMS time (…_UTC, …_TAI, ISO with Z) -> naive UTC datetime."""

    text = text.strip()
    if not text:
        raise BadRequest("empty time")
    try:
        return utc_time(text)
    except ValueError as exc:
        raise BadRequest(f"{text!r} is not a time") from exc


def parse_span(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if not m:
        raise BadRequest(f"{text!r} is not a duration")
    return timedelta(seconds=float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)])


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets and braces."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


class _Record:
    def __init__(self, series: str, instrument: str, header, path: Path):
        self.series, self.instrument, self.path = series, instrument, path
        self.keys = {k: header.get(k) for k in KEYWORDS if header.get(k) is not None}
        self.keys.setdefault("QUALITY", 0)
        if instrument == "hmi":
            self.keys["CAMERA"] = 2
        self.t_rec = str(self.keys["T_REC"])
        self.time = parse_jsoc_time(self.t_rec)
        self.channel = str(self.keys.get("WAVELNTH")) if instrument == "aia" else None

    def name(self) -> str:
        keys = f"[{self.t_rec}]" + (f"[{self.channel}]" if self.instrument == "aia" else "[2]")
        return f"{SERIES[self.instrument]}{keys}"


class _JsocHandler(FaultyHandler):
    server_version = "fake-jsoc/1.0"

    def handle_request(self, head: bool):
        jsoc = self.server.owner
        url = urlsplit(self.path)
        path = unquote(url.path)
        if "\x00" in path:
            raise BadRequest("NUL character in the path")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        cgi = path.rsplit("/", 1)[-1]
        if path.startswith("/cgi-bin/ajax/"):
            op = query.get("op", cgi)
            fault = jsoc._take_fault(f"{cgi}/{op}", kinds=("503", "429"))
            if self.send_fault_status(fault):
                return
            answer = jsoc.answer(cgi, query)
            self.record(200, op=op, ds=query.get("ds"), requestid=answer.get("requestid"),
                        jsoc_status=answer.get("status"))
            return self.send_json(answer)
        relpath = path.lstrip("/")
        fault = jsoc._take_fault(relpath)
        if self.send_fault_status(fault, self.headers.get("Range")):
            return
        target = jsoc.file_at(relpath)
        if target is None:
            self.record(404)
            return self.send_plain(404, f"not found: {path}\n")
        self.send_file(target, fault, head)


class JsocServer(FaultyServer):
    """``with JsocServer(archive_root, emails={'me@example.org'}) as jsoc: drms.Client(server=...)``.

    ``server_config()`` gives the ``drms.ServerConfig`` that points drms at it."""

    handler = _JsocHandler

    def __init__(self, archive_root, emails=("me@example.org",), host: str = "127.0.0.1",
                 port: int = 0, stage_polls: int = 1, max_records: int | None = None,
                 retry_after: int = 0, trickle_interval: float = 20.0):
        from farside_gan.synthetic.archive import read_catalog

        self.root = Path(archive_root).resolve()
        self.emails = set(emails)
        self.stage_polls, self.max_records = stage_polls, max_records
        self.busy = 0
        self.records: dict[str, list[_Record]] = {}
        for row in read_catalog(self.root):
            series = SERIES[row["instrument"]]
            if row["instrument"] in ("aia", "hmi"):
                rec = _Record(series, row["instrument"], fits.getheader(self.root / row["path"]),
                              self.root / row["path"])
                self.records.setdefault(series.lower(), []).append(rec)
        self.exports: dict[str, dict] = {}
        self._export_lock = threading.Lock()
        super().__init__(host, port, retry_after, trickle_interval)

    def server_config(self):
        import drms
        return drms.ServerConfig(name=f"fake JSOC {self.url}", cgi_baseurl=f"{self.url}/cgi-bin/ajax/",
                                 cgi_show_series="show_series", cgi_jsoc_info="jsoc_info",
                                 cgi_jsoc_fetch="jsoc_fetch", cgi_check_address="checkAddress.sh",
                                 http_download_baseurl=f"{self.url}/")

    def expire(self, requestid: str) -> None:
        with self._export_lock:
            self.exports[requestid]["expired"] = True

    def ops(self, op: str) -> list[dict]:
        """The logged requests of one CGI operation (e.g. 'exp_request')."""
        return [r for r in self.requests if r.get("op") == op]

    # -- the CGIs
    def answer(self, cgi: str, q: dict) -> dict:
        if cgi == "checkAddress.sh":
            address = q.get("address", "").replace("%40", "@")
            ok = address in self.emails
            return {"status": 2 if ok else 4, "msg": "Address is OK" if ok else "address not registered"}
        if cgi == "jsoc_info" and q.get("op") == "series_struct":
            return self.series_struct(q.get("ds", ""))
        if cgi == "jsoc_info" and q.get("op") == "rs_list":
            return self.rs_list(q.get("ds", ""), q.get("key", ""), q.get("seg", ""))
        if cgi == "jsoc_fetch" and q.get("op") == "exp_request":
            return self.exp_request(q)
        if cgi == "jsoc_fetch" and q.get("op") == "exp_status":
            return self.exp_status(q.get("requestid", ""))
        raise BadRequest(f"unknown operation {cgi} op={q.get('op')!r}")

    def series_struct(self, name: str) -> dict:
        key = name.lower()
        if key not in PRIMEKEYS:
            return {"status": 1, "error": f"Unknown series {name}"}

        def keyword(k):
            kind = "time" if k in TIME_KEYS else "int" if k in INT_KEYS else \
                "double" if k in ("CADENCE", "EXPTIME") else "string"
            return {"name": k, "type": kind, "recscope": "variable", "defval": "", "units": "",
                    "note": k, "linkinfo": ""}

        keys = list(dict.fromkeys(PRIMEKEYS[key] + list(KEYWORDS)))
        seg = SEGMENTS[key]
        return {"status": 0, "primekeys": PRIMEKEYS[key], "dbindex": PRIMEKEYS[key],
                "keywords": [keyword(k) for k in keys], "links": [],
                "segments": [{"name": seg, "type": "int", "units": "", "protocol": "fits",
                              "dims": "4096x4096", "note": seg}],
                "note": f"synthetic {name}", "retention": 10000, "unitsize": 1, "archive": 1,
                "tapegroup": 1}

    def select(self, ds: str) -> list[_Record]:
        """The records of a record-set specification (see the module docstring)."""
        out = []
        for part in split_top(ds):
            m = re.fullmatch(r"([\w.]+)((?:\[[^\]]*\])*)(?:\{([^}]*)\})?", part)
            if not m:
                raise BadRequest(f"cannot parse record set {part!r}")
            series = m.group(1).lower()
            if series not in self.records and series not in PRIMEKEYS:
                raise BadRequest(f"unknown series {m.group(1)}")
            records = self.records.get(series, [])
            brackets = re.findall(r"\[([^\]]*)\]", m.group(2) or "")
            picked = self._by_time(records, brackets[0], SLOT_S[series]) if brackets and brackets[0].strip() else records
            if series.startswith("aia") and len(brackets) > 1 and brackets[1].strip():
                channels = {c.strip() for c in brackets[1].split(",")}
                picked = [r for r in picked if r.channel in channels]
            out.extend(r for r in picked if r not in out)
        return out

    @staticmethod
    def _by_time(records, selector: str, slot_s: float) -> list[_Record]:
        def in_slot(t):
            near = {}
            for r in records:
                d = abs((r.time - t).total_seconds())
                if d <= slot_s / 2 and (r.channel not in near or d < near[r.channel][0]):
                    near[r.channel] = (d, r)
            return [r for _, r in near.values()]

        picked = []
        for item in (s for s in selector.split(",") if s.strip()):
            if "/" in item:
                start, _, rest = item.partition("/")
                span, _, step = rest.partition("@")
                t0, span = parse_jsoc_time(start), parse_span(span)
                step = parse_span(step) if step else None
                if step is None:
                    picked += [r for r in records if t0 <= r.time < t0 + span]
                else:
                    k = 0
                    while k * step < span:
                        picked += in_slot(t0 + k * step)
                        k += 1
                continue
            window = re.fullmatch(r"(.+?(?:_UTC|_TAI|Z))-(\d.+)", item.strip())
            if window:
                a, b = parse_jsoc_time(window.group(1)), parse_jsoc_time(window.group(2))
                picked += [r for r in records if a <= r.time <= b]
            else:
                picked += in_slot(parse_jsoc_time(item))
        return sorted(set(picked), key=lambda r: (r.time, r.channel or ""))

    def rs_list(self, ds: str, key: str, seg: str) -> dict:
        records = self.select(ds)
        keys = [k for k in key.split(",") if k]
        if keys == ["**ALL**"]:
            keys = list(dict.fromkeys(["T_REC", "T_OBS", "QUALITY", "WAVELNTH", "TELESCOP", "INSTRUME"]))

        def value(r, k):
            v = r.keys.get(k, "MISSING")
            return f"0x{int(v):08x}" if k == "QUALITY" else str(v)

        answer = {"status": 0, "count": len(records),
                  "keywords": [{"name": k, "values": [value(r, k) for r in records]} for k in keys]}
        if seg:
            answer["segments"] = [{"name": s, "values": [r.path.name for r in records]}
                                  for s in seg.split(",") if s]
        return answer

    def exp_request(self, q: dict) -> dict:
        if q.get("notify", "") not in self.emails:
            return {"status": 4, "error": f"{q.get('notify')!r} is not a registered export address"}
        if self.busy > 0:
            self.busy -= 1
            return {"status": 7, "error": f"User {q['notify']} has 1 pending export requests, "
                                          "please wait until they are finished"}
        ds = q.get("ds", "")
        records = self.select(ds)
        if self.max_records is not None and len(records) > self.max_records:
            return {"status": 3, "error": f"Request too large: {len(records)} records, "
                                          f"limit {self.max_records}"}
        with self._export_lock:
            requestid = f"JSOC_{datetime(2026, 1, 1):%Y%m%d}_{len(self.exports) + 1:03d}"
            self.exports[requestid] = {"ds": ds, "records": records, "polls": 0, "expired": False,
                                       "dir": f"/SUM1/D{100 + len(self.exports)}/S00000"}
        size_mb = sum(r.path.stat().st_size for r in records) / 1e6
        return {"status": 2, "requestid": requestid, "method": q.get("method", "url"),
                "protocol": q.get("protocol", "fits").upper(), "wait": 0, "size": size_mb,
                "count": len(records)}

    def exp_status(self, requestid: str) -> dict:
        with self._export_lock:
            export = self.exports.get(requestid)
            if export is None:
                return {"status": 6, "requestid": requestid, "error": "Request not found"}
            if export["expired"]:
                return {"status": 5, "requestid": requestid,
                        "error": "Request too old, the exported data have been deleted"}
            export["polls"] += 1
            if export["polls"] <= self.stage_polls:
                return {"status": 1 if export["polls"] > 1 else 2, "requestid": requestid, "wait": 0}
        records = export["records"]
        return {"status": 0, "requestid": requestid, "method": "url", "protocol": "FITS",
                "dir": export["dir"], "wait": 0, "count": len(records),
                "size": sum(r.path.stat().st_size for r in records) / 1e6, "tarfile": "",
                "keywords": "", "data": [{"record": f"{r.name()}{{{SEGMENTS[r.series.lower()]}}}",
                                          "filename": r.path.name} for r in records]}

    def file_at(self, relpath: str) -> Path | None:
        with self._export_lock:
            for export in self.exports.values():
                prefix = export["dir"].lstrip("/") + "/"
                if relpath.startswith(prefix) and not export["expired"]:
                    name = relpath[len(prefix):]
                    return next((r.path for r in export["records"] if r.path.name == name), None)
        return None
