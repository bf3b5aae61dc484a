//! The REST resources the fake serves, as one table: method, path below `/rest/api/{version}/`
//! (`{}` is a path parameter), whether v3 serves it too, whether only Cloud has it, and the
//! function that answers. `dispatch` picks the route with Jira's precedence: an unknown path is
//! a 404, a known path with another method a 405, a resource that needs a user a 401.

use axum::http::{Method, StatusCode};

use super::errors::{ApiError, Reply};
use super::model::Deployment;
use super::req::Req;
use super::store::Store;
use super::webhook::OutgoingEvent;
use super::{catalog, changelog, endpoints, groups, search, users, watchers};

/// What a resource gets to answer one call.
pub(crate) struct Call<'s, 'r> {
    pub store: &'s mut Store,
    /// The authenticated user, `None` for an anonymous call.
    pub caller: Option<usize>,
    /// The REST version in the path: `2`, `3` or `latest`.
    pub version: &'r str,
    /// The path parameters in order (unused ones are empty).
    pub args: [&'r str; 2],
    pub req: &'r Req<'r>,
    /// Webhook events to deliver once the store is unlocked.
    pub events: &'s mut Vec<OutgoingEvent>,
}

type Handler = fn(&mut Call<'_, '_>) -> Result<Reply, ApiError>;

struct Route {
    method: Method,
    path: &'static [&'static str],
    on_v3: bool,
    cloud_only: bool,
    handler: Handler,
}

const fn route(method: Method, path: &'static [&'static str], handler: Handler) -> Route {
    Route {
        method,
        path,
        on_v3: false,
        cloud_only: false,
        handler,
    }
}

impl Route {
    /// Also served on `/rest/api/3` (v3 differs from v2 only in rich text fields: these have
    /// none, or render them as documents).
    const fn v3(mut self) -> Self {
        self.on_v3 = true;
        self
    }

    const fn cloud_only(mut self) -> Self {
        self.cloud_only = true;
        self
    }

    /// The path parameters when `segments` is this route's path.
    fn capture<'r>(&self, segments: &[&'r str]) -> Option<[&'r str; 2]> {
        if segments.len() != self.path.len() {
            return None;
        }
        let mut args = [""; 2];
        let mut next = 0;
        for (pattern, segment) in self.path.iter().zip(segments) {
            if *pattern == "{}" {
                *args.get_mut(next)? = segment;
                next += 1;
            } else if pattern != segment {
                return None;
            }
        }
        Some(args)
    }
}

/// Resources that need an authenticated user refuse anonymous calls like the auth filter does.
fn user(caller: Option<usize>) -> Result<usize, ApiError> {
    caller.ok_or(ApiError::Unauthenticated { presented: false })
}

const GONE_SEARCH: &str = "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046";

/// Cloud removed the classic search (410); Data Center still serves it.
fn classic_search(c: &mut Call<'_, '_>) -> Result<Reply, ApiError> {
    let user = user(c.caller)?;
    if c.store.deployment == Deployment::Cloud {
        return Err(ApiError::message(StatusCode::GONE, GONE_SEARCH));
    }
    search::classic_search(c.store, user, c.req)
}

const ROUTES: &[Route] = &[
    route(Method::GET, &["serverInfo"], |c| {
        Ok(endpoints::server_info(c.store))
    }),
    route(Method::GET, &["myself"], |c| {
        endpoints::myself(c.store, user(c.caller)?)
    }),
    route(Method::GET, &["user"], |c| {
        user(c.caller)?;
        endpoints::user(c.store, c.req)
    }),
    route(Method::GET, &["user", "search"], |c| {
        users::user_search(c.store, user(c.caller)?, c.req)
    })
    .v3(),
    route(Method::GET, &["user", "viewissue", "search"], |c| {
        users::viewissue_search(c.store, user(c.caller)?, c.req)
    })
    .v3(),
    route(Method::GET, &["user", "groups"], |c| {
        user(c.caller)?;
        groups::user_groups(c.store, c.req)
    }),
    route(Method::GET, &["group", "member"], |c| {
        user(c.caller)?;
        groups::group_members(c.store, c.req)
    }),
    route(Method::GET, &["project", "{}"], |c| {
        endpoints::project(c.store, user(c.caller)?, c.args[0])
    }),
    route(Method::GET, &["project", "{}", "statuses"], |c| {
        endpoints::project_statuses(c.store, user(c.caller)?, c.args[0])
    }),
    route(Method::GET, &["field"], |c| {
        user(c.caller)?;
        catalog::fields(c.store)
    })
    .v3(),
    route(Method::GET, &["status"], |c| {
        user(c.caller)?;
        catalog::statuses(c.store)
    })
    .v3(),
    route(Method::GET, &["issuetype"], |c| {
        user(c.caller)?;
        catalog::issue_types(c.store)
    })
    .v3(),
    route(Method::GET, &["mypermissions"], |c| {
        endpoints::my_permissions(c.store, user(c.caller)?, c.req)
    }),
    route(Method::POST, &["issue"], |c| {
        endpoints::create_issue(c.store, user(c.caller)?, c.req, c.events)
    }),
    route(Method::POST, &["issue", "bulk"], |c| {
        if !c.store.faults.bulk_create_served() {
            return Err(ApiError::MethodNotAllowed);
        }
        endpoints::create_issues(c.store, user(c.caller)?, c.req, c.events)
    }),
    route(Method::GET, &["issue", "{}"], |c| {
        let adf = c.version == "3";
        endpoints::get_issue(c.store, user(c.caller)?, c.args[0], c.req, adf)
    })
    .v3(),
    route(Method::DELETE, &["issue", "{}"], |c| {
        endpoints::delete_issue(c.store, user(c.caller)?, c.args[0])
    }),
    route(Method::GET, &["issue", "{}", "changelog"], |c| {
        let user = user(c.caller)?;
        changelog::list_changelog(c.store, user, c.args[0], c.version, c.req)
    })
    .v3()
    .cloud_only(),
    route(Method::PUT, &["issue", "{}"], |c| {
        endpoints::edit_issue(c.store, user(c.caller)?, c.args[0], c.req, c.events)
    }),
    route(Method::GET, &["issue", "{}", "comment"], |c| {
        endpoints::list_comments(c.store, user(c.caller)?, c.args[0], c.req)
    }),
    route(Method::POST, &["issue", "{}", "comment"], |c| {
        endpoints::add_comment(c.store, user(c.caller)?, c.args[0], c.req, c.events)
    }),
    route(Method::GET, &["issue", "{}", "comment", "{}"], |c| {
        endpoints::get_comment(c.store, user(c.caller)?, c.args[0], c.args[1])
    }),
    route(Method::GET, &["issue", "{}", "watchers"], |c| {
        watchers::list_watchers(c.store, user(c.caller)?, c.args[0])
    })
    .v3(),
    route(Method::POST, &["issue", "{}", "watchers"], |c| {
        watchers::add_watcher(c.store, user(c.caller)?, c.args[0], c.req)
    })
    .v3(),
    route(Method::GET, &["issue", "{}", "transitions"], |c| {
        endpoints::list_transitions(c.store, user(c.caller)?, c.args[0], c.req)
    }),
    route(Method::POST, &["issue", "{}", "transitions"], |c| {
        endpoints::do_transition(c.store, user(c.caller)?, c.args[0], c.req, c.events)
    }),
    route(Method::GET, &["issue", "{}", "properties"], |c| {
        endpoints::list_properties(c.store, user(c.caller)?, c.args[0])
    }),
    route(Method::GET, &["issue", "{}", "properties", "{}"], |c| {
        endpoints::get_property(c.store, user(c.caller)?, c.args[0], c.args[1])
    }),
    route(Method::PUT, &["issue", "{}", "properties", "{}"], |c| {
        endpoints::put_property(c.store, user(c.caller)?, c.args[0], c.args[1], c.req)
    }),
    route(Method::DELETE, &["issue", "{}", "properties", "{}"], |c| {
        endpoints::delete_property(c.store, user(c.caller)?, c.args[0], c.args[1])
    }),
    route(Method::GET, &["search"], classic_search).v3(),
    route(Method::POST, &["search"], classic_search).v3(),
    route(Method::GET, &["search", "jql"], |c| {
        search::enhanced_search(c.store, user(c.caller)?, c.req)
    })
    .v3()
    .cloud_only(),
    route(Method::POST, &["search", "jql"], |c| {
        search::enhanced_search(c.store, user(c.caller)?, c.req)
    })
    .v3()
    .cloud_only(),
];

/// Answers `/rest/<segments>`: an unknown path (or version) is a 404, a known path with another
/// method a 405, a resource this version does not serve a 404.
pub(crate) fn dispatch<'r>(
    call: &mut Call<'_, 'r>,
    segments: &[&'r str],
) -> Result<Reply, ApiError> {
    let no_resource = || ApiError::NoResource {
        uri: call.req.uri.to_string(),
    };
    let ["api", version, rest @ ..] = segments else {
        return Err(no_resource());
    };
    let cloud = call.store.deployment == Deployment::Cloud;
    // Only Cloud has v3.
    if !matches!((*version, cloud), ("2" | "latest", _) | ("3", true)) {
        return Err(no_resource());
    }
    let mut found = ROUTES
        .iter()
        .filter(|route| !route.cloud_only || cloud)
        .filter_map(|route| Some((route, route.capture(rest)?)))
        .peekable();
    if found.peek().is_none() {
        return Err(no_resource());
    }
    let Some((route, args)) = found.find(|(route, _)| route.method == *call.req.method) else {
        return Err(ApiError::MethodNotAllowed);
    };
    if *version == "3" && !route.on_v3 {
        return Err(no_resource());
    }
    call.version = version;
    call.args = args;
    (route.handler)(call)
}
