//! JSON output helpers: one object on stdout with `"schema": 1`.

use serde_json::{Map, Value, json};

/// Prints `value` (an object) with the schema field first.
pub fn print(mut fields: Map<String, Value>) {
    let mut obj = Map::new();
    obj.insert("schema".into(), json!(1));
    obj.append(&mut fields);
    println!("{}", Value::Object(obj));
}

/// Final contents of every map, by name: `[{"key": hex, "value": hex}, ...]`.
pub fn maps(maps: &vm_core::maps::MapSet) -> Value {
    let mut out = Map::new();
    for map in maps.iter() {
        let entries: Vec<Value> = map
            .entries()
            .into_iter()
            .map(|(k, v)| json!({"key": hex::encode(k), "value": hex::encode(v)}))
            .collect();
        out.insert(map.def().name.clone(), Value::Array(entries));
    }
    Value::Object(out)
}
