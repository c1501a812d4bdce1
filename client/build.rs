//! Generates the client from the committed `../openapi.json` (the single
//! source; nothing generated is edited by hand). The server writes OpenAPI
//! 3.1 and progenitor 0.15 reads 3.0, so the document is lowered here first:
//! `type: [T, "null"]` and `oneOf [X, null]` become `nullable`, `const` a
//! one-value enum, numeric `exclusiveMinimum/Maximum` the 3.0 booleans,
//! `examples` an `example`, and 3.1-only keywords are dropped; string and
//! array constraints (`pattern`, lengths, item counts) are left to the
//! server, so the Rust types stay plain `String`s and `Vec`s.

use serde_json::{Map, Value};

const SPEC: &str = "../openapi.json";

fn main() {
    println!("cargo:rerun-if-changed={SPEC}");
    println!("cargo:rerun-if-changed=build.rs");
    let text = std::fs::read_to_string(SPEC).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    let mut doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{SPEC}: {e}"));
    lower(&mut doc);
    doc["openapi"] = Value::String("3.0.3".into());
    if let Some(license) = doc
        .pointer_mut("/info/license")
        .and_then(Value::as_object_mut)
    {
        license.remove("identifier");
    }
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(doc).unwrap_or_else(|e| panic!("{SPEC} as OpenAPI 3.0: {e}"));
    let mut settings = progenitor::GenerationSettings::new();
    settings.with_interface(progenitor::InterfaceStyle::Positional);
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&spec)
        .unwrap_or_else(|e| panic!("generating the client from {SPEC}: {e}"));
    let ast = syn::parse2(tokens).expect("progenitor emits valid Rust");
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("codegen.rs");
    std::fs::write(&out, prettyplease::unparse(&ast)).expect("write codegen.rs");
}

/// Rewrites 3.1 schema forms into their 3.0 equivalents, everywhere.
fn lower(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(lower),
        Value::Object(map) => {
            lower_schema(map);
            map.values_mut().for_each(lower);
        }
        _ => {}
    }
}

fn lower_schema(map: &mut Map<String, Value>) {
    // type: ["string", "null"] → type: "string", nullable: true
    if let Some(Value::Array(types)) = map.get("type").cloned() {
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if non_null.len() < types.len() {
            map.insert("nullable".into(), Value::Bool(true));
        }
        match non_null.as_slice() {
            [one] => {
                map.insert("type".into(), one.clone());
            }
            [] => {
                map.remove("type");
            }
            many => {
                let alts = many
                    .iter()
                    .map(|t| serde_json::json!({ "type": t }))
                    .collect();
                map.remove("type");
                map.insert("anyOf".into(), Value::Array(alts));
            }
        }
    }
    // oneOf/anyOf [X, {type: null}] → allOf [X] + nullable
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(alts)) = map.get(key).cloned() {
            let is_null = |a: &Value| a.get("type").and_then(Value::as_str) == Some("null");
            if alts.iter().any(is_null) {
                let rest: Vec<Value> = alts.into_iter().filter(|a| !is_null(a)).collect();
                map.remove(key);
                map.insert("nullable".into(), Value::Bool(true));
                if rest.len() == 1 {
                    map.insert("allOf".into(), Value::Array(rest));
                } else {
                    map.insert(key.into(), Value::Array(rest));
                }
            }
        }
    }
    if let Some(c) = map.remove("const") {
        map.insert("enum".into(), Value::Array(vec![c]));
    }
    for (key, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(n) = map.get(key).filter(|n| n.is_number()).cloned() {
            map.insert(bound.into(), n);
            map.insert(key.into(), Value::Bool(true));
        }
    }
    if let Some(Value::Array(examples)) = map.remove("examples") {
        if let Some(first) = examples.into_iter().next() {
            map.entry("example").or_insert(first);
        }
    }
    for key in [
        "propertyNames",
        "$schema",
        "contentMediaType",
        "contentEncoding",
    ] {
        map.remove(key);
    }
    // String and array constraints stay the server's to check (it answers
    // 422 naming the field): progenitor would turn every constrained
    // string into a newtype built with `try_from`, and a `uniqueItems`
    // array into a set, so `queries_path: "./queries".into()` would no
    // longer compile. The facade checks the Idempotency-Key itself.
    if map.get("type").and_then(Value::as_str) == Some("string")
        || map.get("type").and_then(Value::as_str) == Some("array")
    {
        for key in [
            "pattern",
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "uniqueItems",
        ] {
            map.remove(key);
        }
    }
}
