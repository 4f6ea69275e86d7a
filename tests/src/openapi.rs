//! Checks real answers of the agent against docs/openapi.yaml: the schema of the documented status code
//! of the path and method, with `$ref`s resolved. Objects are closed: a field the document does not name
//! is an error, so the document cannot fall behind the code.

use serde_json::Value;

pub struct Spec(Value);

impl Spec {
    pub fn load() -> Self {
        let text =
            std::fs::read_to_string(crate::root().join("docs/openapi.yaml")).expect("docs/openapi.yaml");
        Self(serde_yaml::from_str(&text).expect("openapi.yaml parses"))
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let mut at = &self.0;
                for part in r.trim_start_matches("#/").split('/') {
                    at = &at[part];
                }
                self.resolve(at)
            }
            None => v,
        }
    }

    /// Checks `body` as the answer `status` of `method path`.
    pub fn check(&self, method: &str, path: &str, status: u16, body: &Value) -> Result<(), String> {
        let op = &self.0["paths"][path][method.to_ascii_lowercase()];
        if op.is_null() {
            return Err(format!("{method} {path} is not in docs/openapi.yaml"));
        }
        let response = self.resolve(&op["responses"][status.to_string()]);
        if response.is_null() {
            return Err(format!("{method} {path}: status {status} is not documented"));
        }
        let schema = &response["content"]["application/json"]["schema"];
        self.validate(body, schema, "$")
    }

    /// The error codes the document lists.
    pub fn error_codes(&self) -> Vec<String> {
        self.0["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]
            .as_array()
            .expect("code enum")
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect()
    }

    fn validate(&self, v: &Value, schema: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if v.is_null() && schema["nullable"] == true {
            return Ok(());
        }
        if let Some(options) = schema["enum"].as_array() {
            if !options.contains(v) {
                return Err(format!("{at}: {v} is not one of {options:?}"));
            }
        }
        let ok = match schema["type"].as_str() {
            Some("object") => {
                let Some(obj) = v.as_object() else { return Err(format!("{at}: object expected, got {v}")) };
                for req in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if !obj.contains_key(req) {
                        return Err(format!("{at}: required field {req:?} missing"));
                    }
                }
                if let Some(props) = schema["properties"].as_object() {
                    for (k, val) in obj {
                        let s = props.get(k).ok_or_else(|| format!("{at}: field {k:?} is not documented"))?;
                        self.validate(val, s, &format!("{at}.{k}"))?;
                    }
                }
                true
            }
            Some("array") => {
                let Some(items) = v.as_array() else { return Err(format!("{at}: array expected")) };
                for (i, item) in items.iter().enumerate() {
                    self.validate(item, &schema["items"], &format!("{at}[{i}]"))?;
                }
                true
            }
            Some("string") => v.is_string(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            Some("boolean") => v.is_boolean(),
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{at}: {v} is not of type {}", schema["type"]))
        }
    }
}
