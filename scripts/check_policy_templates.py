#!/usr/bin/env python3
"""Checks the managed-policy templates against the keys the agent reads.

Run by the agent's unit test `policy_keys::tests::the_templates_have_every_key_and_no_other`, which passes
the keys (read from the agent's `Config`) as JSON:
    check_policy_templates.py '{"keys": [...], "site_keys": [...], "pin_prompt_keys": [...]}'
Checks:
- installer/windows/policy/AgentCPx.admx and its fr-FR, en-US ADML: well-formed XML; every
  $(string.X) and $(presentation.X) the ADMX names exists in each ADML; every presentation element's
  refId is an element of its policy; both ADML have the same string ids; the registry value names under
  Software\\Policies\\Agent CPx are the agent's keys (`site` excepted: a site with its roots is a subkey
  site\\N, which an ADMX cannot write; `allowed_origins` carries sites), those under ...\\pin_prompt the
  keys of pin_prompt.
- installer/macos/fr.agentcpx.agent.all-keys.plist: the domain's preferences with every key and no other
  (and every key of a site and of pin_prompt); printed as JSON on stdout for the caller to check the
  values with the agent's own parser.
- installer/macos/agent-cpx.mobileconfig, the profile an MDM pushes as it is: its fr.agentcpx.agent
  payload sets only keys the agent reads, none of those that must be adapted per fleet or per Mac
  (user_ports, data_dir, pin_prompt, site) and no path of a user's or of Homebrew; Chrome, Edge and
  Firefox payloads let the profile's portals through (Local Network Access), the same origins and hosts;
  every PayloadUUID differs; device scope.
Exit status 0 when all holds; otherwise every problem is printed on stderr and the status is 1.
"""
import json
import plistlib
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NS = {"p": "http://schemas.microsoft.com/GroupPolicy/2006/07/PolicyDefinitions"}
KEY = r"Software\Policies\Agent CPx"
ADMX_EXEMPT = {"site"}
problems = []


def admx_checks(keys, pin_keys):
    base = ROOT / "installer/windows/policy"
    try:
        admx = ET.parse(base / "AgentCPx.admx").getroot()
        admls = {lang: ET.parse(base / lang / "AgentCPx.adml").getroot() for lang in ("fr-FR", "en-US")}
    except (ET.ParseError, OSError) as e:
        problems.append(f"ADMX/ADML not well-formed or missing: {e}")
        return
    text = ET.tostring(admx, encoding="unicode")
    strings = set(re.findall(r"\$\(string\.([A-Za-z0-9_]+)\)", text))
    presentations = set(re.findall(r"\$\(presentation\.([A-Za-z0-9_]+)\)", text))
    ids = {}
    for lang, adml in admls.items():
        sids = {s.get("id") for s in adml.iterfind(".//p:stringTable/p:string", NS)}
        ids[lang] = sids
        for s in sorted(strings - sids):
            problems.append(f"{lang}/AgentCPx.adml: no string {s}")
        pres = {p.get("id"): p for p in adml.iterfind(".//p:presentationTable/p:presentation", NS)}
        for p in sorted(presentations - set(pres)):
            problems.append(f"{lang}/AgentCPx.adml: no presentation {p}")
        for policy in admx.iterfind(".//p:policies/p:policy", NS):
            ref = re.match(r"\$\(presentation\.(.+)\)", policy.get("presentation") or "")
            elements = {e.get("id") for e in policy.iterfind("p:elements/*", NS)}
            if ref and ref.group(1) in pres:
                for child in pres[ref.group(1)]:
                    if child.get("refId") is not None and child.get("refId") not in elements:
                        problems.append(f"{lang}: presentation {ref.group(1)} refers to {child.get('refId')}, not an element of policy {policy.get('name')}")
            elif elements:
                problems.append(f"policy {policy.get('name')} has elements but no presentation")
    if ids["fr-FR"] != ids["en-US"]:
        problems.append(f"fr-FR and en-US ADML differ in string ids: {sorted(ids['fr-FR'] ^ ids['en-US'])}")
    for cat in admx.iterfind(".//p:parentCategory", NS):
        if cat.get("ref") not in {c.get("name") for c in admx.iterfind(".//p:categories/p:category", NS)}:
            problems.append(f"parentCategory {cat.get('ref')} is not a category")
    values = {}
    for policy in admx.iterfind(".//p:policies/p:policy", NS):
        key = policy.get("key")
        if policy.get("valueName"):
            values.setdefault(key, set()).add(policy.get("valueName"))
        for e in policy.iterfind("p:elements/*", NS):
            values.setdefault(e.get("key") or key, set()).add(e.get("valueName"))
    top = values.pop(KEY, set())
    pin = values.pop(KEY + r"\pin_prompt", set())
    if pin:
        top.add("pin_prompt")
    for k in sorted(set(keys) - ADMX_EXEMPT - top):
        problems.append(f"AgentCPx.admx: key {k} missing")
    for k in sorted(top - set(keys)):
        problems.append(f"AgentCPx.admx: value {k} is not a key the agent reads")
    if pin != set(pin_keys):
        problems.append(f"AgentCPx.admx: pin_prompt values {sorted(pin)}, the agent reads {sorted(pin_keys)}")
    for other in values:
        problems.append(f"AgentCPx.admx: values under {other}, which the agent does not read")


# Keys a profile pushed to a whole fleet as it is must not set: they depend on the Mac or the fleet.
PER_FLEET = {"user_ports", "data_dir", "pin_prompt", "site"}


def load_plist(path):
    try:
        return plistlib.loads(path.read_bytes())
    except Exception as e:  # plistlib raises several types for a malformed plist
        problems.append(f"{path.name}: not a plist: {e}")
        return None


def mobileconfig_checks(keys):
    path = ROOT / "installer/macos/agent-cpx.mobileconfig"
    profile = load_plist(path)
    if profile is None:
        return
    content = profile.get("PayloadContent", [])
    by_type = {}
    for p in content:
        by_type.setdefault(p.get("PayloadType"), []).append(p)
    for t in ("fr.agentcpx.agent", "com.google.Chrome", "com.microsoft.Edge", "org.mozilla.firefox"):
        if len(by_type.get(t, [])) != 1:
            problems.append(f"{path.name}: {len(by_type.get(t, []))} payloads of type {t}, expected 1")
    if problems:
        return
    agent = {k: v for k, v in by_type["fr.agentcpx.agent"][0].items() if not k.startswith("Payload")}
    for k in sorted(set(agent) - set(keys)):
        problems.append(f"{path.name}: key {k} is not a key the agent reads")
    for k in sorted(set(agent) & PER_FLEET):
        problems.append(f"{path.name}: sets {k}, which depends on the fleet or the Mac: not in a profile pushed as it is")
    text = path.read_text(encoding="utf-8")
    body = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    for bad in ("/Users/", "/opt/homebrew", "/usr/local/Cellar"):
        if bad in body:
            problems.append(f"{path.name}: a value names {bad}, a user's or Homebrew's path")
    origins = [entry.split()[0] for entry in agent.get("allowed_origins", [])]
    if not origins:
        problems.append(f"{path.name}: no allowed_origins: the browsers' payloads would have nothing to let through")
    for t in ("com.google.Chrome", "com.microsoft.Edge"):
        for policy in ("LocalNetworkAccessAllowedForUrls", "LoopbackNetworkAllowedForUrls"):
            if by_type[t][0].get(policy) != origins:
                problems.append(f"{path.name}: {t} {policy} is {by_type[t][0].get(policy)}, the profile's origins are {origins}")
    firefox = by_type["org.mozilla.firefox"][0]
    hosts = [re.sub(r"^https://([^:/]+).*$", r"\1", o).lower() for o in origins]
    if firefox.get("EnterprisePoliciesEnabled") is not True:
        problems.append(f"{path.name}: Firefox reads a profile's policies only with EnterprisePoliciesEnabled true")
    if firefox.get("LocalNetworkAccess", {}).get("SkipDomains") != hosts:
        problems.append(f"{path.name}: Firefox LocalNetworkAccess.SkipDomains is not the profile's hosts {hosts}")
    uuids = [p.get("PayloadUUID") for p in content] + [profile.get("PayloadUUID")]
    if len(set(uuids)) != len(uuids) or None in uuids:
        problems.append(f"{path.name}: PayloadUUIDs missing or repeated: {uuids}")
    if profile.get("PayloadScope") != "System":
        problems.append(f"{path.name}: PayloadScope is not System (a device profile)")


def all_keys_checks(keys, site_keys, pin_keys):
    path = ROOT / "installer/macos/fr.agentcpx.agent.all-keys.plist"
    payload = load_plist(path)
    if payload is None:
        return None
    for k in sorted(set(keys) - set(payload)):
        problems.append(f"{path.name}: key {k} missing")
    for k in sorted(set(payload) - set(keys)):
        problems.append(f"{path.name}: key {k} is not a key the agent reads")
    for site in payload.get("site", []):
        if set(site) != set(site_keys):
            problems.append(f"{path.name}: a site has keys {sorted(site)}, the agent reads {sorted(site_keys)}")
    if set(payload.get("pin_prompt", {})) != set(pin_keys):
        problems.append(f"{path.name}: pin_prompt has keys {sorted(payload.get('pin_prompt', {}))}, the agent reads {sorted(pin_keys)}")
    return payload


def main():
    wanted = json.loads(sys.argv[1])
    admx_checks(wanted["keys"], wanted["pin_prompt_keys"])
    mobileconfig_checks(wanted["keys"])
    payload = all_keys_checks(wanted["keys"], wanted["site_keys"], wanted["pin_prompt_keys"])
    for p in problems:
        print(p, file=sys.stderr)
    print(json.dumps(payload))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
