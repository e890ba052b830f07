//! The emulator's answers held against what the vendor says they are, without our serde
//! types: requests go out as raw HTTP with JSON written here, answers come back as raw
//! JSON, and only keys and JSON types are compared. A field-name slip in the client's wire
//! model, mirrored in the emulator because they once shared it, fails here.
//!
//! Expectations: in the `seed` dialect, the example answers of the vendor's documents
//! (`tests/fixtures/*.json`, copied from the seeds): every key an example has, the answer
//! has, with the same JSON type, all the way down. In the `sdk` dialect, the vendor Go
//! SDK's models (`tests/fixtures/contract/sdk_models.json`) where it has one, the seeds
//! elsewhere.

use serde_json::{Value, json};

use crate::util::{self, KEY};
use moi_ingest::emulator::Dialect;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Where `got` differs from the documents' example `want`: a key `want` has that `got`
/// lacks, or holds with another JSON type. Arrays compare their first elements; an
/// example's `null` says nothing of the type.
fn against_example(got: &Value, want: &Value, at: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Null, _) => {}
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    None => out.push(format!("{at}.{k}: missing")),
                    Some(gv) => against_example(gv, wv, &format!("{at}.{k}"), out),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            if let (Some(wf), Some(gf)) = (w.first(), g.first()) {
                against_example(gf, wf, &format!("{at}[0]"), out);
            }
        }
        (w, g) if json_type(w) != json_type(g) => out.push(format!(
            "{at}: {} where the documents show {} ({g})",
            json_type(g),
            json_type(w)
        )),
        _ => {}
    }
}

/// Where `got` differs from an SDK model: each key as the model types it (`"string"`, ...,
/// `"type?"` for one the SDK leaves out when empty), objects and one-element arrays for
/// nested models. A present key of another type is what the Go SDK refuses; `null` it
/// takes as empty.
fn against_model(got: &Value, model: &Value, at: &str, out: &mut Vec<String>) {
    match model {
        Value::Object(m) => {
            let Some(g) = got.as_object() else {
                out.push(format!(
                    "{at}: {} where the SDK reads an object",
                    json_type(got)
                ));
                return;
            };
            for (k, mv) in m.iter().filter(|(k, _)| !k.starts_with('_')) {
                let optional = mv.as_str().is_some_and(|t| t.ends_with('?'));
                match g.get(k) {
                    None if optional => {}
                    None => out.push(format!("{at}.{k}: missing")),
                    Some(gv) => against_model(gv, mv, &format!("{at}.{k}"), out),
                }
            }
        }
        Value::Array(m) => match (got, m.first()) {
            (Value::Array(g), Some(mf)) => {
                if let Some(gf) = g.first() {
                    against_model(gf, mf, &format!("{at}[0]"), out);
                }
            }
            (Value::Null, _) => {}
            _ => out.push(format!(
                "{at}: {} where the SDK reads an array",
                json_type(got)
            )),
        },
        Value::String(t) => {
            let t = t.trim_end_matches('?');
            if !got.is_null() && json_type(got) != t {
                out.push(format!(
                    "{at}: {} where the SDK reads {t} ({got})",
                    json_type(got)
                ));
            }
        }
        _ => {}
    }
}

/// A raw client: JSON written here, the envelope checked, `data` returned.
struct Raw {
    http: reqwest::Client,
    base: String,
}

impl Raw {
    async fn answer(&self, req: reqwest::RequestBuilder, call: &str) -> Value {
        let resp = req.header("moi-key", KEY).send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{call}: HTTP {status}: {body}");
        let envelope = body.as_object().unwrap();
        // `data` only where there is something to say: the documents' own answers to a
        // create or an update carry none (tests/fixtures/ok.json).
        for key in ["code", "msg"] {
            assert!(envelope.contains_key(key), "{call}: no {key} in {body}");
        }
        assert!(
            body["code"]
                .as_str()
                .is_some_and(|c| c.eq_ignore_ascii_case("ok")),
            "{call}: {body}"
        );
        body["data"].clone()
    }
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Value {
        let req = self.http.get(format!("{}{path}", self.base)).query(query);
        self.answer(req, path).await
    }
    async fn post(&self, path: &str, body: &Value) -> Value {
        let req = self.http.post(format!("{}{path}", self.base)).json(body);
        self.answer(req, path).await
    }
}

/// What a call's answer is held against.
enum Expect {
    /// A seeds' example answer (its `data`).
    Example(&'static str),
    /// A part of an example's `data`, by JSON pointer.
    ExampleAt(&'static str, &'static str),
    /// A model of the vendor's Go SDK.
    Model(&'static str),
}

fn differences(got: &Value, expect: &Expect) -> Vec<String> {
    let mut out = Vec::new();
    match expect {
        Expect::Example(name) => against_example(got, &fixture(name)["data"], "data", &mut out),
        Expect::ExampleAt(name, pointer) => {
            let want = fixture(name)["data"].pointer(pointer).cloned().unwrap();
            against_example(got, &want, "data", &mut out)
        }
        Expect::Model(name) => against_model(
            got,
            &fixture("contract/sdk_models.json")[name],
            "data",
            &mut out,
        ),
    }
    out
}

/// Every call the worker makes, in one dialect: made raw, answered, held against what
/// the vendor says.
async fn contract(dialect: Dialect) -> Vec<String> {
    let env = util::emulator_with(|c| c.dialect = dialect).await;
    let raw = Raw {
        http: reqwest::Client::new(),
        base: env.emu.url(),
    };
    let sdk = dialect == Dialect::Sdk;
    let mut problems = Vec::new();
    let mut check = |call: &str, got: &Value, expect: Expect| {
        problems.extend(
            differences(got, &expect)
                .into_iter()
                .map(|d| format!("{dialect:?} {call}: {d}")),
        );
    };

    // The upload, as the vendor's Python example sends it.
    let meta = json!([{"file_name": "a.txt", "file_size": 5, "mime_type": "text/plain"}]);
    let form = reqwest::multipart::Form::new()
        .text("VolumeID", env.volume.clone())
        .text("meta", meta.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("a.txt"),
        );
    let req = raw
        .http
        .post(format!("{}/connectors/upload", raw.base))
        .multipart(form);
    let upload = raw.answer(req, "/connectors/upload").await;
    let expect = if sdk {
        Expect::Model("upload")
    } else {
        Expect::Example("upload.json")
    };
    check("POST /connectors/upload", &upload, expect);
    let task_id = match &upload["task_id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };

    let task = raw.get("/task/get", &[("task_id", task_id.clone())]).await;
    let expect = if sdk {
        Expect::Model("task_get")
    } else {
        Expect::Example("task_get.json")
    };
    check("GET /task/get", &task, expect);
    let files = raw
        .get("/task/files", &[("task_id", task_id.clone())])
        .await;
    check(
        "GET /task/files",
        &files,
        Expect::Example("task_files.json"),
    );
    let tasks = raw.get("/task/list", &[]).await;
    let expect = if sdk {
        Expect::Model("task_list")
    } else {
        Expect::Example("task_list.json")
    };
    check("GET /task/list", &tasks, expect);

    // Connectors, from the documents' own request.
    let create = &fixture("seed_requests.json")["connector_create"];
    raw.post("/connectors", create).await;
    let connectors = raw.get("/connectors/list", &[]).await;
    check(
        "GET /connectors/list",
        &connectors,
        Expect::Example("connectors_list.json"),
    );
    let cid = connectors["connectors"][0]["id"]
        .to_string()
        .replace('"', "");
    let cfiles = raw
        .get("/connectors/files/list", &[("connector_id", cid)])
        .await;
    check(
        "GET /connectors/files/list",
        &cfiles,
        Expect::Example("connector_files.json"),
    );

    // Export tasks, from the documents' own request.
    let export = &fixture("seed_requests.json")["export_dify"];
    raw.post("/byoa/api/v1/export/task/create", export).await;
    let exports = raw
        .post(
            "/byoa/api/v1/export/task/list",
            &json!({"offset": 0, "limit": 10}),
        )
        .await;
    check(
        "POST export/task/list",
        &exports,
        Expect::Example("export_1.json"),
    );
    let eid = exports["tasks"][0]["id"].clone();
    let info = raw
        .post("/byoa/api/v1/export/task/info", &json!({"id": eid}))
        .await;
    check(
        "POST export/task/info",
        &info,
        Expect::ExampleAt("export_2.json", ""),
    );
    let efiles = raw
        .post(
            "/byoa/api/v1/export/task/files",
            &json!({"task_id": eid, "offset": 0, "limit": 10}),
        )
        .await;
    check(
        "POST export/task/files",
        &efiles,
        Expect::Example("export_3.json"),
    );

    // The catalog, which only the live dialect has; the SDK's models are its reference.
    if sdk {
        let list = raw
            .post(
                "/catalog/file/list",
                &json!({"page": 1, "page_size": 50, "filters": [
                    {"name": "volume_id", "values": [env.volume], "fuzzy": false},
                    {"name": "parent_id", "values": [""], "fuzzy": false}
                ]}),
            )
            .await;
        check(
            "POST /catalog/file/list",
            &list,
            Expect::Model("catalog_file_list"),
        );
        let id = list["list"][0]["id"].clone();
        let info = raw.post("/catalog/file/info", &json!({"id": id})).await;
        check(
            "POST /catalog/file/info",
            &info,
            Expect::Model("catalog_file_info"),
        );
        let vol = raw
            .post("/catalog/volume/info", &json!({"id": env.volume}))
            .await;
        check(
            "POST /catalog/volume/info",
            &vol,
            Expect::Model("catalog_volume_info"),
        );
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_answers_as_the_documents_and_the_vendors_sdk_say_in_both_dialects() {
    let mut problems = contract(Dialect::Seed).await;
    problems.extend(contract(Dialect::Sdk).await);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_comparisons_see_a_missing_key_and_a_wrong_type() {
    let mut out = Vec::new();
    against_example(
        &json!({"task_id": 5, "files": [{"id": "1"}], "extra": "x"}),
        &json!({"task_id": "5", "files": [{"id": "1", "name": "a"}], "extra": null}),
        "data",
        &mut out,
    );
    assert_eq!(
        out,
        [
            "data.files[0].name: missing",
            "data.task_id: number where the documents show string (5)"
        ]
    );
    let mut out = Vec::new();
    against_model(
        &json!({"id": 7, "size": null, "list": [{"name": true}]}),
        &json!({"id": "string", "size": "number", "note": "string?", "list": [{"name": "string"}]}),
        "data",
        &mut out,
    );
    assert_eq!(
        out,
        [
            "data.id: number where the SDK reads string (7)",
            "data.list[0].name: boolean where the SDK reads string (true)"
        ]
    );
}
