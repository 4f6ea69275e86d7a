#!/usr/bin/env python3
"""What wixl (msitools 0.101, Debian 12) does not compile in agent-cpx.wxs, done another way.

agent-cpx.wxs is plain WiX v3, so that WiX itself builds it too (a Windows release job). wixl 0.101 stops at
a Component's <Condition> and at <Environment>, and ignores Property/@Secure. This script writes a copy of
the source without them, and the SQL that puts them into the built MSI (msibuild -q): the Component table's
Condition column, the Environment table with the actions that write and remove its variables (sequenced
as WiX does), and the secure properties appended to SecureCustomProperties (the list wixl writes for
MajorUpgrade).

    wixl-compat.py SOURCE.wxs STRIPPED.wxs SQL.txt     (SQL.txt: one query per line)
"""

import sys
import xml.dom.minidom

WIX = "http://schemas.microsoft.com/wix/2006/wi"


def text(node):
    return "".join(c.data for c in node.childNodes if c.nodeType in (c.TEXT_NODE, c.CDATA_SECTION_NODE)).strip()


def sql_string(value):
    if "'" in value:
        raise SystemExit(f"wixl-compat: a quote in {value!r} cannot go into msibuild's SQL")
    return f"'{value}'"


def environment_row(node, component):
    """An <Environment> as WiX v3 writes its row: the name's prefix says when (= set, + create, ! remove at
    install), - removed at uninstall (Permanent="no"), * the machine's (System="yes"); Part first/last
    puts [~] (the variable's current value) after or before ours."""
    action = node.getAttribute("Action") or "set"
    prefix = {"set": "=", "create": "+", "remove": "!"}[action]
    if node.getAttribute("Permanent") != "yes":
        prefix += "-"
    if node.getAttribute("System") == "yes":
        prefix += "*"
    value = node.getAttribute("Value")
    separator = node.getAttribute("Separator") or ";"
    part = node.getAttribute("Part") or "all"
    if part == "last":
        value = f"[~]{separator}{value}"
    elif part == "first":
        value = f"{value}{separator}[~]"
    return [node.getAttribute("Id"), prefix + node.getAttribute("Name"), value, component]


def main(source, stripped, sql_out):
    doc = xml.dom.minidom.parse(source)
    queries = []
    for component in doc.getElementsByTagNameNS(WIX, "Component"):
        for child in list(component.childNodes):
            if child.nodeType == child.ELEMENT_NODE and child.localName == "Condition":
                condition = text(child)
                if not condition:
                    raise SystemExit(f"wixl-compat: empty condition in component {component.getAttribute('Id')}")
                queries.append(f"UPDATE `Component` SET `Condition` = {sql_string(condition)} WHERE `Component` = {sql_string(component.getAttribute('Id'))}")
                component.removeChild(child)
    environment = []
    for component in doc.getElementsByTagNameNS(WIX, "Component"):
        for child in list(component.childNodes):
            if child.nodeType == child.ELEMENT_NODE and child.localName == "Environment":
                environment.append(environment_row(child, component.getAttribute("Id")))
                component.removeChild(child)
    if environment:
        queries.append(
            "CREATE TABLE `Environment` (`Environment` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, "
            "`Value` CHAR(255) LOCALIZABLE, `Component_` CHAR(72) NOT NULL PRIMARY KEY `Environment`)"
        )
        for row in environment:
            queries.append(
                "INSERT INTO `Environment` (`Environment`, `Name`, `Value`, `Component_`) VALUES ("
                + ", ".join(sql_string(v) for v in row) + ")"
            )
        # WiX's standard sequence numbers: removed after the registry values, written after them.
        for action, sequence in [("RemoveEnvironmentStrings", 3300), ("WriteEnvironmentStrings", 5200)]:
            queries.append(
                "INSERT INTO `InstallExecuteSequence` (`Action`, `Sequence`) VALUES "
                f"({sql_string(action)}, {sequence})"
            )
    secure = []
    for prop in doc.getElementsByTagNameNS(WIX, "Property"):
        if prop.getAttribute("Secure") == "yes":
            secure.append(prop.getAttribute("Id"))
            prop.removeAttribute("Secure")
    with open(stripped, "w", encoding=doc.encoding or "utf-8") as out:
        out.write(doc.toxml(encoding=None).replace('<?xml version="1.0" ?>', f'<?xml version="1.0" encoding="{doc.encoding or "utf-8"}"?>', 1))
    with open(sql_out, "w", encoding="utf-8") as out:
        for q in queries:
            out.write(q + "\n")
        if secure:
            # MajorUpgrade made wixl write SecureCustomProperties (WIX_UPGRADE_DETECTED…): append ours.
            out.write("SECURE " + ";".join(secure) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
