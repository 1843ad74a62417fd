//! Canonical JSON for the documents ocikit creates: object keys sorted, no insignificant
//! whitespace. Equal input gives equal bytes, and so equal digests.
//!
//! This is never applied to documents ocikit read: their bytes are the truth and are copied as
//! they are.

use serde_json::Value;

/// Serializes `value` canonically.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                if let Some(v) = map.get(key) {
                    write_value(v, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Serializing a scalar Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_and_is_compact() {
        let v = json!({"b": 1, "a": {"d": [1, {"z": null, "y": "x"}], "c": true}});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"a":{"c":true,"d":[1,{"y":"x","z":null}]},"b":1}"#
        );
    }

    #[test]
    fn escapes_strings() {
        let v = json!({"k": "a\"b\n<>&"});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"k":"a\"b\n<>&"}"#
        );
    }
}
