//! The documented calls for connectors, load tasks and export tasks, one request type each.
//!
//! `client.send(&ListConnectors { page: 1, page_size: 100, ..Default::default() })` makes
//! the call and returns its typed answer. A call whose body the user may write takes it as
//! its model or as JSON [`Checked`](crate::endpoints::Checked) against the model (sent as
//! written). The catalog calls are declared the same way in [`crate::catalog`].

use serde::Serialize;
use serde_json::Value;

use crate::endpoints::{FromEmpty, Query, call, empty_is_default};
use crate::id::Id;
use crate::model::{
    ConnectorFiles, ConnectorList, CreateConnector as ConnectorBody, CreateTask as TaskBody,
    ExportCreate, ExportFiles, ExportFilesQuery, ExportList, ExportListQuery, ExportRef,
    RetryFiles, TaskFilesPage, TaskGet, TaskList, TaskListQuery, TaskRef,
    UpdateConnector as ConnectorChange, UpdateTask as TaskChange, Validation,
};

// A listing without data is an empty page; the other answers read are malformed without it.
empty_is_default!(
    ConnectorList,
    ConnectorFiles,
    TaskList,
    ExportList,
    ExportFiles
);
impl FromEmpty for TaskFilesPage {}
impl FromEmpty for TaskGet {}
impl FromEmpty for Validation {}

/// `POST /connectors`: a connector to OSS, S3, HDFS, MatrixOne or Dify.
pub struct CreateConnector<'a, B> {
    pub body: &'a B,
}
call!(CreateConnector<ConnectorBody> => POST "/connectors" -> Value);

/// `POST /connectors/validate`: can the service reach the source with this config?
pub struct ValidateConnector<'a, B> {
    pub body: &'a B,
}
call!(ValidateConnector<Value> => POST "/connectors/validate" -> Validation);

/// `GET /connectors/list`: one page.
#[derive(Debug, Clone, Default)]
pub struct ListConnectors {
    pub keyword: Option<String>,
    pub source_type: Option<i64>,
    pub page: u64,
    pub page_size: u64,
}
call!(ListConnectors => GET "/connectors/list" -> ConnectorList, no body,
    fn query(&self) -> Query {
        let mut q = Query::new();
        if let Some(k) = &self.keyword {
            q.push(("keyword", k.clone()));
        }
        if let Some(t) = self.source_type {
            q.push(("source_type", t.to_string()));
        }
        q.push(("page", self.page.to_string()));
        q.push(("page_size", self.page_size.to_string()));
        q
    }
);

/// `PUT /connectors/{id}`: what changes.
pub struct UpdateConnector<'a, B> {
    pub id: String,
    pub body: &'a B,
}
call!(UpdateConnector<ConnectorChange> => PUT "/connectors/{}" -> Value,
    fn path_arg(&self) -> Option<&str> {
        Some(&self.id)
    }
);

/// `DELETE /connectors/{id}`.
pub struct DeleteConnector {
    pub id: String,
}
call!(DeleteConnector => DELETE "/connectors/{}" -> Value, no body,
    fn path_arg(&self) -> Option<&str> {
        Some(&self.id)
    }
);

/// `GET /connectors/files/list`: the files a connector's source holds.
pub struct ListConnectorFiles {
    pub connector_id: Id,
    /// Sent as repeated keys: `file_types=2&file_types=10`.
    pub file_types: Vec<i64>,
}
call!(ListConnectorFiles => GET "/connectors/files/list" -> ConnectorFiles, no body,
    fn query(&self) -> Query {
        let mut q: Query = vec![("connector_id", self.connector_id.to_string())];
        q.extend(self.file_types.iter().map(|t| ("file_types", t.to_string())));
        q
    }
);

/// `GET /connectors/summary`.
pub struct ConnectorSummary;
call!(ConnectorSummary => GET "/connectors/summary" -> Value, no body);

/// `POST /task`: load files from a connector into a volume.
pub struct CreateTask<'a, B> {
    pub body: &'a B,
}
call!(CreateTask<TaskBody> => POST "/task" -> Value);

/// `POST /task/update`.
pub struct UpdateTask<'a, B> {
    pub body: &'a B,
}
call!(UpdateTask<TaskChange> => POST "/task/update" -> Value);

/// `GET /task/files`: one page of a task's files, optionally only those in `statuses`.
pub struct ListTaskFiles {
    pub task_id: Id,
    /// Sent as repeated keys: `status=4&status=5`.
    pub statuses: Vec<i64>,
    pub page: u64,
    pub page_size: u64,
}
call!(ListTaskFiles => GET "/task/files" -> TaskFilesPage, no body,
    fn query(&self) -> Query {
        let mut q: Query = vec![("task_id", self.task_id.to_string())];
        q.extend(self.statuses.iter().map(|s| ("status", s.to_string())));
        q.push(("page", self.page.to_string()));
        q.push(("page_size", self.page_size.to_string()));
        q
    }
);

/// `GET /task/get`: the task, whether the answer nests it under `task` or not.
pub struct GetTask {
    pub task_id: Id,
}
call!(GetTask => GET "/task/get" -> TaskGet, no body,
    fn query(&self) -> Query {
        vec![("task_id", self.task_id.to_string())]
    }
);

// `GET /task/list`; empty fields are not sent.
call!(TaskListQuery => GET "/task/list" -> TaskList, no body,
    fn query(&self) -> Query {
        let mut q = Query::new();
        if let Some(d) = self.is_desc {
            q.push(("is_desc", d.to_string()));
        }
        let intervals = self.load_interval_types.iter();
        q.extend(intervals.map(|t| ("load_interval_types", t.to_string())));
        if let Some(o) = &self.order_by {
            q.push(("order_by", o.clone()));
        }
        if let Some(p) = self.page {
            q.push(("page", p.to_string()));
        }
        if let Some(p) = self.page_size {
            q.push(("page_size", p.to_string()));
        }
        q.extend(self.status.iter().map(|s| ("status", s.to_string())));
        q
    }
);

// `POST /task/retry`: load a task's failed files `ids` again.
call!(RetryFiles => POST "/task/retry" -> Value, body: self);

/// `POST /task/delete`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct DeleteTask(pub TaskRef);
call!(DeleteTask => POST "/task/delete" -> Value, body: self);

/// `POST /task/pause`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct PauseTask(pub TaskRef);
call!(PauseTask => POST "/task/pause" -> Value, body: self);

/// `POST /task/resume`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct ResumeTask(pub TaskRef);
call!(ResumeTask => POST "/task/resume" -> Value, body: self);

/// `POST /export/task/create` (prefix `/byoa/api/v1`).
pub struct CreateExport<'a, B> {
    pub body: &'a B,
}
call!(CreateExport<ExportCreate> => POST "/byoa/api/v1/export/task/create" -> Value);

/// `POST /export/task/list`.
pub struct ListExports<'a, B> {
    pub body: &'a B,
}
call!(ListExports<ExportListQuery> => POST "/byoa/api/v1/export/task/list" -> ExportList);

/// `POST /export/task/info`: the task with its `file_stats`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct GetExport(pub ExportRef);
call!(GetExport => POST "/byoa/api/v1/export/task/info" -> Value, body: self);

// `POST /export/task/files`.
call!(ExportFilesQuery => POST "/byoa/api/v1/export/task/files" -> ExportFiles, body: self);

/// `POST /export/task/{task_id}/rerun`: its failed files go again.
pub struct RerunExport {
    pub id: String,
}
call!(RerunExport => POST "/byoa/api/v1/export/task/{}/rerun" -> Value, no body,
    fn path_arg(&self) -> Option<&str> {
        Some(&self.id)
    }
);

/// `POST /export/task/delete`.
#[derive(Serialize)]
#[serde(transparent)]
pub struct DeleteExport(pub ExportRef);
call!(DeleteExport => POST "/byoa/api/v1/export/task/delete" -> Value, body: self);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::{Call, Checked};

    fn query<C: Call>(c: &C) -> String {
        let q = c.query();
        let pairs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join("&")
    }

    #[test]
    fn queries_repeat_keys_and_leave_out_what_was_not_given() {
        let files = ListTaskFiles {
            task_id: Id(7),
            statuses: vec![4, 5],
            page: 2,
            page_size: 50,
        };
        assert_eq!(
            query(&files),
            "task_id=7&status=4&status=5&page=2&page_size=50"
        );
        assert_eq!(query(&TaskListQuery::default()), "");
        let connectors = ListConnectors {
            keyword: Some("c1".into()),
            page: 1,
            page_size: 10,
            ..ListConnectors::default()
        };
        assert_eq!(query(&connectors), "keyword=c1&page=1&page_size=10");
        let sample = ListConnectorFiles {
            connector_id: Id(100004),
            file_types: vec![2, 10],
        };
        assert_eq!(
            query(&sample),
            "connector_id=100004&file_types=2&file_types=10"
        );
    }

    #[test]
    fn each_call_names_its_endpoint_path_and_body() {
        let change = Checked::<ConnectorChange>::parse(json_body()).unwrap();
        let update = UpdateConnector {
            id: "100005".into(),
            body: &change,
        };
        assert_eq!(
            UpdateConnector::<Checked<ConnectorChange>>::ENDPOINT.name,
            "PUT /connectors/{}"
        );
        assert_eq!(update.path_arg(), Some("100005"));
        assert_eq!(serde_json::to_value(update.body()).unwrap(), json_body());
        let delete = DeleteConnector { id: "9".into() };
        assert!(delete.body().is_none());
        let pause = PauseTask(TaskRef { task_id: Id(3) });
        assert_eq!(
            serde_json::to_string(&pause.body()).unwrap(),
            r#"{"task_id":"3"}"#
        );
        assert_eq!(
            RerunExport::ENDPOINT.path,
            "/byoa/api/v1/export/task/{}/rerun"
        );
    }

    fn json_body() -> Value {
        serde_json::json!({"name": "renamed"})
    }
}
