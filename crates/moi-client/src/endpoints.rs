//! How a JSON call is declared and made: one way for every call.
//!
//! Each call is a request type that implements [`Call`]: it names its [`Endpoint`] and its
//! answer, fills the path parameter and the query, and gives its body. [`Client::send`]
//! makes any of them (the path parameter escaped, query strings sent with repeated keys,
//! the envelope checked, a lower-case `"ok"` accepted) and returns the typed answer. An
//! answer without `data` is malformed, unless the answer type says what an empty one
//! reads as ([`FromEmpty`]). The declarations are in [`crate::calls`] and
//! [`crate::catalog`].

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::Client;
use super::error::{ApiError, ErrorKind};

/// One call of the MOI API.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// How errors and logs name it: `POST /connectors`.
    pub name: &'static str,
    pub method: Method,
    /// Path below the endpoint; `{}` is the one path parameter.
    pub path: &'static str,
}

/// A request of the MOI API: the type names its endpoint and its answer, and gives its
/// path parameter, query and body.
pub trait Call: Sync {
    const ENDPOINT: Endpoint;
    /// What the answer's `data` holds.
    type Answer: DeserializeOwned + FromEmpty;
    type Body: Serialize + ?Sized;
    /// The value of the path's `{}`, for an endpoint that has one.
    fn path_arg(&self) -> Option<&str> {
        None
    }
    fn query(&self) -> Query {
        Query::new()
    }
    fn body(&self) -> Option<&Self::Body>;
}

/// What an answer without `data` reads as: `None` (the default) makes it malformed.
pub trait FromEmpty: Sized {
    fn from_empty() -> Option<Self> {
        None
    }
}

/// An answer nobody reads beyond its envelope (created, updated, deleted).
impl FromEmpty for Value {
    fn from_empty() -> Option<Self> {
        Some(Value::Null)
    }
}

/// Declares what an answer without `data` reads as: an empty page of a listing.
macro_rules! empty_is_default {
    ($($t:ty),* $(,)?) => {
        $( impl $crate::endpoints::FromEmpty for $t {
            fn from_empty() -> Option<Self> {
                Some(Self::default())
            }
        } )*
    };
}
pub(crate) use empty_is_default;

/// Declares a call, in one of three forms, each followed by any `path_arg` or `query`:
/// - `Request<Model> => METHOD "/path" -> Answer`: the request wraps a body of the
///   caller's (`body: &B`, the model or JSON checked against it);
/// - `Request => METHOD "/path" -> Answer, body: self`: the request is the body;
/// - `Request => METHOD "/path" -> Answer, no body`: path and query only.
macro_rules! call {
    (@endpoint $method:ident $path:literal) => {
        $crate::endpoints::Endpoint {
            name: concat!(stringify!($method), " ", $path),
            method: reqwest::Method::$method,
            path: $path,
        }
    };
    // A request that wraps a body of the user's (its model, or JSON checked against it).
    ($req:ident<$model:ty> => $method:ident $path:literal -> $answer:ty $(, $($rest:tt)*)?) => {
        impl<B: $crate::endpoints::BodyOf<$model> + Sync> $crate::endpoints::Call for $req<'_, B> {
            const ENDPOINT: $crate::endpoints::Endpoint = call!(@endpoint $method $path);
            type Answer = $answer;
            type Body = B;
            fn body(&self) -> Option<&B> {
                Some(self.body)
            }
            $($($rest)*)?
        }
    };
    ($req:ty => $method:ident $path:literal -> $answer:ty, body: self $(, $($rest:tt)*)?) => {
        impl $crate::endpoints::Call for $req {
            const ENDPOINT: $crate::endpoints::Endpoint = call!(@endpoint $method $path);
            type Answer = $answer;
            type Body = Self;
            fn body(&self) -> Option<&Self> {
                Some(self)
            }
            $($($rest)*)?
        }
    };
    ($req:ty => $method:ident $path:literal -> $answer:ty, no body $(, $($rest:tt)*)?) => {
        impl $crate::endpoints::Call for $req {
            const ENDPOINT: $crate::endpoints::Endpoint = call!(@endpoint $method $path);
            type Answer = $answer;
            type Body = ();
            fn body(&self) -> Option<&()> {
                None
            }
            $($($rest)*)?
        }
    };
}
pub(crate) use call;

/// Query parameters, keeping repeated keys (`file_types=2&file_types=10`).
pub type Query = Vec<(&'static str, String)>;

impl Client {
    /// Makes the call `req` declares; returns its answer.
    pub async fn send<C: Call>(&self, req: &C) -> Result<C::Answer, ApiError> {
        let data: Option<C::Answer> = self
            .call(&C::ENDPOINT, req.path_arg(), &req.query(), req.body())
            .await?;
        data.or_else(C::Answer::from_empty).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Malformed,
                C::ENDPOINT.name,
                "the answer has no data",
            )
        })
    }

    /// Makes `ep` with an optional path parameter, query and JSON body; returns `data`.
    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
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
