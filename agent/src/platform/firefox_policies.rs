//! Firefox's enterprise policies file (`policies.json`), which an administrator may share with the agent.
//! The agent edits one list inside `policies` at a time — `Certificates.Install` for the local CA
//! (agent/src/platform/machine_trust.rs), `LocalNetworkAccess.SkipDomains` for the sites
//! (agent/src/platform/browser_policies.rs) — keeps every other policy, drops the objects its edit leaves empty, and
//! the whole file when nothing is left in it. Pure: the callers read and write the file their own way.

use serde_json::{json, Map, Value};

/// What the file becomes after an edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The list did not change: nothing to write.
    Unchanged,
    /// The new text of the file.
    Write(String),
    /// Nothing is left in the file: remove it.
    Remove,
}

/// Why a policies.json cannot be edited. Its text is left as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyFileError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("{what} is not {expected}")]
    Shape { what: String, expected: &'static str },
}

/// Applies `edit` to the list at `policies.<object>.<list>` of the file whose text is `existing` (`None`:
/// no file yet; the objects on the way are created as needed).
pub fn edit_list(
    existing: Option<&str>,
    object: &str,
    list: &str,
    edit: impl FnOnce(&mut Vec<Value>),
) -> Result<Next, PolicyFileError> {
    let mut doc: Value = match existing {
        Some(text) => serde_json::from_str(text).map_err(|e| PolicyFileError::NotJson(e.to_string()))?,
        None => json!({}),
    };
    let shape = |what: String, expected| PolicyFileError::Shape { what, expected };
    let top = doc.as_object_mut().ok_or_else(|| shape("the file".into(), "an object"))?;
    let policies = child(top, "policies").ok_or_else(|| shape("policies".into(), "an object"))?;
    let parent = child(policies, object).ok_or_else(|| shape(format!("policies.{object}"), "an object"))?;
    let items = parent
        .entry(list)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| shape(format!("policies.{object}.{list}"), "a list"))?;
    let before = items.clone();
    edit(items);
    if *items == before {
        return Ok(Next::Unchanged);
    }
    if items.is_empty() {
        parent.remove(list);
    }
    if parent.is_empty() {
        policies.remove(object);
    }
    if policies.is_empty() {
        top.remove("policies");
    }
    Ok(if top.is_empty() { Next::Remove } else { Next::Write(format!("{doc:#}\n")) })
}

/// The object at `key` of `map`, created empty when absent; `None` when it is something else.
fn child<'m>(map: &'m mut Map<String, Value>, key: &str) -> Option<&'m mut Map<String, Value>> {
    map.entry(key).or_insert_with(|| json!({})).as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(host: &'static str) -> impl FnOnce(&mut Vec<Value>) {
        move |list| {
            if !list.iter().any(|v| v.as_str() == Some(host)) {
                list.push(json!(host));
            }
        }
    }

    fn written(next: Next) -> Value {
        match next {
            Next::Write(text) => serde_json::from_str(&text).unwrap(),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn created_merged_and_removed_down_to_nothing() {
        let new = written(edit_list(None, "LocalNetworkAccess", "SkipDomains", add("a.example")).unwrap());
        assert_eq!(new, json!({"policies": {"LocalNetworkAccess": {"SkipDomains": ["a.example"]}}}));
        let text = new.to_string();
        assert_eq!(
            edit_list(Some(&text), "LocalNetworkAccess", "SkipDomains", add("a.example")).unwrap(),
            Next::Unchanged,
            "already there: nothing to write"
        );
        assert_eq!(
            edit_list(Some(&text), "LocalNetworkAccess", "SkipDomains", |l| l.clear()).unwrap(),
            Next::Remove
        );
        assert_eq!(
            edit_list(None, "Certificates", "Install", |_| {}).unwrap(),
            Next::Unchanged,
            "no file made"
        );
    }

    #[test]
    fn other_policies_and_other_entries_are_kept() {
        let theirs = json!({"policies": {"DisableTelemetry": true, "Certificates": {"ImportEnterpriseRoots": true, "Install": ["/x.pem"]}}});
        let ours =
            written(edit_list(Some(&theirs.to_string()), "Certificates", "Install", add("/ca.pem")).unwrap());
        assert_eq!(ours["policies"]["Certificates"]["Install"], json!(["/x.pem", "/ca.pem"]));
        let back = written(
            edit_list(Some(&ours.to_string()), "Certificates", "Install", |l| l.retain(|v| v != "/ca.pem"))
                .unwrap(),
        );
        assert_eq!(back, theirs);
    }

    #[test]
    fn a_file_of_another_shape_is_refused_not_rewritten() {
        assert!(matches!(
            edit_list(Some("{ not json"), "Certificates", "Install", add("/ca.pem")),
            Err(PolicyFileError::NotJson(_))
        ));
        for (text, what) in [
            ("[]", "the file"),
            (r#"{"policies": 1}"#, "policies"),
            (r#"{"policies": {"Certificates": []}}"#, "policies.Certificates"),
            (r#"{"policies": {"Certificates": {"Install": "x"}}}"#, "policies.Certificates.Install"),
        ] {
            match edit_list(Some(text), "Certificates", "Install", add("/ca.pem")) {
                Err(PolicyFileError::Shape { what: w, .. }) => assert_eq!(w, what, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
