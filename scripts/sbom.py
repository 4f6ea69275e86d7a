#!/usr/bin/env python3
"""The crates the shipped binaries (cpx-agent, cpx-tray) are built from, from `cargo metadata`: a CycloneDX
1.5 SBOM (every crate with its version, licence, source and checksum) and the licence check of that tree.

    scripts/sbom.py --out FILE.cdx.json     write the SBOM
    scripts/sbom.py --check                 every crate's licence allowed (deny.toml's list); exit 1 otherwise
    scripts/sbom.py --summary               crates per licence

The tree: the normal (not dev, not build) dependencies of cpx-agent and cpx-tray, on every platform the
packages are built for (Linux, Windows, macOS). Build scripts and proc-macros run at build time and are
listed too: their code shapes the binaries. Timestamps: SOURCE_DATE_EPOCH (the same SBOM from the same
commit). Used by scripts/release.sh.
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import uuid

ROOTS = ("cpx-agent", "cpx-tray")
TARGETS = ("x86_64-unknown-linux-gnu", "x86_64-pc-windows-gnu", "aarch64-apple-darwin", "x86_64-apple-darwin")
HERE = os.path.dirname(os.path.abspath(__file__))


def allowed_licences():
    """The `allow` list of deny.toml's [licenses] (one source for cargo-deny and this check)."""
    text = open(os.path.join(HERE, "..", "deny.toml"), encoding="utf-8").read()
    block = re.search(r"^\[licenses\][^\[]*?allow\s*=\s*\[(.*?)\]", text, re.S | re.M)
    if not block:
        sys.exit("sbom: no [licenses] allow list in deny.toml")
    return set(re.findall(r'"([^"]+)"', block.group(1)))


def metadata(target):
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform", target],
        check=True,
        capture_output=True,
        text=True,
        cwd=os.path.join(HERE, ".."),
    ).stdout
    return json.loads(out)


def shipped():
    """Package id → package, for every crate reachable from the roots on any packaged platform."""
    found = {}
    for target in TARGETS:
        meta = metadata(target)
        packages = {p["id"]: p for p in meta["packages"]}
        nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
        todo = [p["id"] for p in meta["packages"] if p["name"] in ROOTS and p["source"] is None]
        seen = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            for dep in nodes[pid]["deps"]:
                if any(k["kind"] in (None, "build") for k in dep["dep_kinds"]):
                    todo.append(dep["pkg"])
        for pid in seen:
            found[pid] = packages[pid]
    return found


def licence_ok(expr, allow):
    """Evaluates an SPDX expression (AND, OR, WITH, parentheses; the old `A/B` form as OR)."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))
    pos = 0

    def primary():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            value = disjunction()
            pos += 1  # ")"
            return value
        name = tok
        if pos < len(tokens) and tokens[pos] == "WITH":
            name += " WITH " + tokens[pos + 1]
            pos += 2
        return name in allow or name.split(" WITH ")[0] in allow

    def conjunction():
        nonlocal pos
        value = primary()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            value = primary() and value
        return value

    def disjunction():
        nonlocal pos
        value = conjunction()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            value = conjunction() or value
        return value

    return bool(tokens) and disjunction()


def purl(p):
    return f"pkg:cargo/{p['name']}@{p['version']}"


def sbom(found):
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lock = {}
    lockfile = open(os.path.join(HERE, "..", "Cargo.lock"), encoding="utf-8").read()
    for block in lockfile.split("[[package]]")[1:]:
        name = re.search(r'^name = "(.*)"', block, re.M)
        version = re.search(r'^version = "(.*)"', block, re.M)
        checksum = re.search(r'^checksum = "(.*)"', block, re.M)
        if name and version and checksum:
            lock[(name.group(1), version.group(1))] = checksum.group(1)
    components = []
    ours = None
    for p in sorted(found.values(), key=lambda p: (p["name"], p["version"])):
        c = {
            "type": "application" if p["name"] in ROOTS else "library",
            "bom-ref": purl(p),
            "name": p["name"],
            "version": p["version"],
            "purl": purl(p),
        }
        if p.get("license"):
            c["licenses"] = [{"expression": p["license"]}]
        if p.get("description"):
            c["description"] = p["description"].strip()
        if p.get("repository"):
            c["externalReferences"] = [{"type": "vcs", "url": p["repository"]}]
        checksum = lock.get((p["name"], p["version"]))
        if checksum:
            c["hashes"] = [{"alg": "SHA-256", "content": checksum}]
        if p["name"] == "cpx-agent":
            ours = c
        components.append(c)
    refs = {purl(p): p for p in found.values()}
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        # The same commit gives the same document: the serial number is derived from its content.
        "serialNumber": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "agent-cpx:" + ",".join(sorted(refs)))),
        "version": 1,
        "metadata": {
            "timestamp": stamp,
            "tools": {"components": [{"type": "application", "name": "scripts/sbom.py (cargo metadata)"}]},
            "component": {
                "type": "application",
                "name": "agent-cpx",
                "version": ours["version"] if ours else "",
                "licenses": [{"expression": "EUPL-1.2"}],
            },
        },
        "components": components,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    found = shipped()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(sbom(found), f, indent=1, ensure_ascii=False, sort_keys=True)
            f.write("\n")
        print(f"sbom: {args.out}: {len(found)} crates")
    if args.summary:
        counts = {}
        for p in found.values():
            counts[p.get("license") or "(none)"] = counts.get(p.get("license") or "(none)", 0) + 1
        for licence, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"{n:5} {licence}")
    if args.check:
        allow = allowed_licences()
        bad = [p for p in found.values() if not licence_ok(p.get("license") or "", allow)]
        for p in sorted(bad, key=lambda p: p["name"]):
            print(f"licence not allowed: {p['name']} {p['version']}: {p.get('license') or 'none declared'}")
        if bad:
            sys.exit(1)
        print(f"licences: {len(found)} crates, all allowed (deny.toml)")


if __name__ == "__main__":
    main()
