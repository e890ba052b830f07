//! The documented JSON calls, stated once each: method, path, body and answer.
//!
//! [`Endpoint`] is the declaration; [`Client::call`] makes any of them (path parameters
//! filled in, query strings sent with repeated keys, the envelope checked, a lower-case
//! `"ok"` accepted). The `calls!` table below turns each into a typed method, so adding a
//! call is one line, not another copy of the request code.

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::Client;
use super::error::{ApiError, ErrorKind};
use super::model::{
    ConnectorFiles, ConnectorList, CreateConnector, CreateTask, ExportCreate, ExportFiles,
    ExportFilesQuery, ExportList, ExportListQuery, ExportRef, UpdateConnector, UpdateTask,
    Validation,
};

/// One call of the MOI API.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// How errors and logs name it: `POST /connectors`.
    pub name: &'static str,
    pub method: Method,
    /// Path below the endpoint; `{}` is the one path parameter.
    pub path: &'static str,
}

macro_rules! endpoint {
    ($method:ident $path:literal) => {
        Endpoint {
            name: concat!(stringify!($method), " ", $path),
            method: Method::$method,
            path: $path,
        }
    };
}

pub const CONNECTOR_CREATE: Endpoint = endpoint!(POST "/connectors");
pub const CONNECTOR_VALIDATE: Endpoint = endpoint!(POST "/connectors/validate");
pub const CONNECTOR_LIST: Endpoint = endpoint!(GET "/connectors/list");
pub const CONNECTOR_UPDATE: Endpoint = endpoint!(PUT "/connectors/{}");
pub const CONNECTOR_DELETE: Endpoint = endpoint!(DELETE "/connectors/{}");
pub const CONNECTOR_FILES: Endpoint = endpoint!(GET "/connectors/files/list");
pub const CONNECTOR_SUMMARY: Endpoint = endpoint!(GET "/connectors/summary");
pub const TASK_FILES: Endpoint = endpoint!(GET "/task/files");
pub const TASK_GET: Endpoint = endpoint!(GET "/task/get");
pub const TASK_LIST: Endpoint = endpoint!(GET "/task/list");
pub const TASK_RETRY: Endpoint = endpoint!(POST "/task/retry");
pub const TASK_DELETE: Endpoint = endpoint!(POST "/task/delete");
pub const TASK_PAUSE: Endpoint = endpoint!(POST "/task/pause");
pub const TASK_RESUME: Endpoint = endpoint!(POST "/task/resume");
pub const TASK_CREATE: Endpoint = endpoint!(POST "/task");
pub const TASK_UPDATE: Endpoint = endpoint!(POST "/task/update");
pub const EXPORT_CREATE: Endpoint = endpoint!(POST "/byoa/api/v1/export/task/create");
pub const EXPORT_LIST: Endpoint = endpoint!(POST "/byoa/api/v1/export/task/list");
pub const EXPORT_INFO: Endpoint = endpoint!(POST "/byoa/api/v1/export/task/info");
pub const EXPORT_FILES: Endpoint = endpoint!(POST "/byoa/api/v1/export/task/files");
pub const EXPORT_RERUN: Endpoint = endpoint!(POST "/byoa/api/v1/export/task/{}/rerun");
pub const EXPORT_DELETE: Endpoint = endpoint!(POST "/byoa/api/v1/export/task/delete");

/// Query parameters, keeping repeated keys (`file_types=2&file_types=10`).
pub type Query = Vec<(&'static str, String)>;

impl Client {
    /// Makes `ep` with an optional path parameter, query and JSON body; returns `data`.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        ep: &Endpoint,
        path_arg: Option<&str>,
        query: &Query,
        body: Option<&B>,
    ) -> Result<Option<T>, ApiError> {
        let path = match (ep.path.contains("{}"), path_arg) {
            (true, Some(arg)) => {
                let escaped: String =
                    form_urlencoded::byte_serialize(arg.as_bytes()).collect::<String>();
                ep.path.replace("{}", &escaped)
            }
            (true, None) => {
                return Err(ApiError::new(
                    ErrorKind::Local,
                    ep.name,
                    "this call needs an id in its path",
                ));
            }
            (false, _) => ep.path.to_string(),
        };
        let url = self.url(&path);
        let method = ep.method.clone();
        let limit = self.call_timeout();
        self.execute(ep.name, |http| {
            let mut rb = http.request(method.clone(), &url).timeout(limit);
            if !query.is_empty() {
                rb = rb.query(query);
            }
            if let Some(b) = body {
                rb = rb.json(b);
            }
            Ok(rb)
        })
        .await
    }
}

/// A JSON body checked against its call's model `T`, and sent exactly as it is: no field
/// it lacks is added, as serializing `T` would (a `PUT` with a default value blanks a
/// stored setting).
#[derive(Debug, Clone)]
pub struct Checked<T> {
    pub model: T,
    json: Value,
}

impl<T: DeserializeOwned> Checked<T> {
    /// `json`, if it reads as `T`.
    pub fn parse(json: Value) -> Result<Self, serde_json::Error> {
        let model = T::deserialize(&json)?;
        Ok(Checked { model, json })
    }
}

impl<T: Serialize> Checked<T> {
    /// A body built as a model, sent as the model serializes.
    pub fn from_model(model: T) -> Self {
        let json = serde_json::to_value(&model).unwrap_or_default();
        Checked { model, json }
    }
}

impl<T> Checked<T> {
    pub fn json(&self) -> &Value {
        &self.json
    }
    pub fn into_json(self) -> Value {
        self.json
    }
}

impl<T> Serialize for Checked<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

/// What a call takes as its body: its model, or JSON [`Checked`] against the model.
pub trait BodyOf<T>: Serialize {}
impl<T: Serialize> BodyOf<T> for T {}
impl<T> BodyOf<T> for Checked<T> {}

macro_rules! calls {
    ($( $(#[$doc:meta])* $name:ident($ep:ident $(, path)? $(, query)? $(, body: $body:ty)?) -> $answer:ty; )*) => {
        impl Client {
            $( calls!(@method $(#[$doc])* $name $ep [$($body)?] $answer); )*
        }
    };
    (@method $(#[$doc:meta])* $name:ident $ep:ident [] $answer:ty) => {
        $(#[$doc])*
        pub async fn $name(
            &self,
            path_arg: Option<&str>,
            query: &Query,
            body: Option<&Value>,
        ) -> Result<Option<$answer>, ApiError> {
            self.call(&$ep, path_arg, query, body).await
        }
    };
    (@method $(#[$doc:meta])* $name:ident $ep:ident [$body:ty] $answer:ty) => {
        $(#[$doc])*
        pub async fn $name<B: BodyOf<$body>>(
            &self,
            path_arg: Option<&str>,
            query: &Query,
            body: Option<&B>,
        ) -> Result<Option<$answer>, ApiError> {
            self.call(&$ep, path_arg, query, body).await
        }
    };
}

calls! {
    /// `POST /connectors`: a connector to OSS, S3, HDFS, MatrixOne or Dify.
    connector_create(CONNECTOR_CREATE, body: CreateConnector) -> Value;
    /// `POST /connectors/validate`: can the service reach the source with this config?
    connector_validate(CONNECTOR_VALIDATE, body: Value) -> Validation;
    /// `GET /connectors/list`.
    connector_list(CONNECTOR_LIST, query) -> ConnectorList;
    /// `PUT /connectors/{id}`.
    connector_update(CONNECTOR_UPDATE, path, body: UpdateConnector) -> Value;
    /// `DELETE /connectors/{id}`.
    connector_delete(CONNECTOR_DELETE, path) -> Value;
    /// `GET /connectors/files/list`: the files a connector's source holds.
    connector_files(CONNECTOR_FILES, query) -> ConnectorFiles;
    /// `GET /connectors/summary`.
    connector_summary(CONNECTOR_SUMMARY) -> Value;
    /// `POST /task`: load files from a connector into a volume.
    task_create(TASK_CREATE, body: CreateTask) -> Value;
    /// `POST /task/update`.
    task_update(TASK_UPDATE, body: UpdateTask) -> Value;
    /// `POST /export/task/create` (prefix `/byoa/api/v1`).
    export_create(EXPORT_CREATE, body: ExportCreate) -> Value;
    /// `POST /export/task/list`.
    export_list(EXPORT_LIST, body: ExportListQuery) -> ExportList;
    /// `POST /export/task/info`: the task with its `file_stats`.
    export_info(EXPORT_INFO, body: ExportRef) -> Value;
    /// `POST /export/task/files`.
    export_files(EXPORT_FILES, body: ExportFilesQuery) -> ExportFiles;
    /// `POST /export/task/{task_id}/rerun`: its failed files go again.
    export_rerun(EXPORT_RERUN, path) -> Value;
    /// `POST /export/task/delete`.
    export_delete(EXPORT_DELETE, body: ExportRef) -> Value;
}
