//! The admin API's route table. Each endpoint module adds its routes here instead of to actix-web directly,
//! so that the same calls both register the routes and list them: the OpenAPI document is checked against
//! that list (tests/openapi.rs), and a route nobody documented fails the test.

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Responder};

/// Where the admin API is mounted.
pub const BASE_PATH: &str = "/admin/v1";

/// Registers routes on an actix-web scope, or only lists them.
pub struct RouteTable<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    listed: Vec<(Method, String)>,
}

impl<'a> RouteTable<'a> {
    pub(super) fn registering(cfg: &'a mut web::ServiceConfig) -> Self {
        RouteTable { cfg: Some(cfg), listed: Vec::new() }
    }

    /// `path` is relative to [`BASE_PATH`], in actix-web's `{name}` syntax (which is OpenAPI's too).
    pub fn add<F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        if let Some(cfg) = self.cfg.as_deref_mut() {
            cfg.route(path, web::method(method.clone()).to(handler));
        }
        self.listed.push((method, format!("{BASE_PATH}{path}")));
        self
    }

    pub fn get<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::GET, path, handler)
    }

    pub fn post<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::POST, path, handler)
    }

    pub fn patch<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::PATCH, path, handler)
    }

    pub fn delete<F, Args>(&mut self, path: &'static str, handler: F) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.add(Method::DELETE, path, handler)
    }
}

/// Every admin route the router serves: method and full path, e.g. `("GET", "/admin/v1/clients/{id}")`.
pub fn route_table() -> Vec<(String, String)> {
    let mut table = RouteTable { cfg: None, listed: Vec::new() };
    super::register(&mut table);
    table.listed.into_iter().map(|(method, path)| (method.to_string(), path)).collect()
}
