//! The fake's vocabulary: who may call, the schedules and who is on call, and the call log.

/// An Atlassian account that may call the API with Basic `email:api_token`.
#[derive(Clone, Debug)]
pub struct JsmAccount {
    pub account_id: String,
    pub email: String,
    pub token: String,
    /// A scoped token without `read:ops-config:jira-service-management` is refused with 401.
    pub has_ops_scope: bool,
}

impl JsmAccount {
    pub fn new(account_id: &str, email: &str, token: &str) -> Self {
        Self {
            account_id: account_id.into(),
            email: email.into(),
            token: token.into(),
            has_ops_scope: true,
        }
    }

    pub fn without_ops_scope(mut self) -> Self {
        self.has_ops_scope = false;
        self
    }
}

/// A team on call in a schedule, with the users it puts on call.
#[derive(Clone, Debug)]
pub struct OnCallTeam {
    pub id: String,
    pub users: Vec<String>,
}

/// One on-call schedule.
#[derive(Clone, Debug)]
pub struct JsmSchedule {
    pub id: String,
    pub name: String,
    pub timezone: String,
    /// Account ids of the users on call directly.
    pub on_call: Vec<String>,
    /// Teams on call, whose users are on call too.
    pub teams: Vec<OnCallTeam>,
    /// Account ids that may read the schedule; `None`: every account.
    pub readers: Option<Vec<String>>,
}

impl JsmSchedule {
    pub fn new(id: &str, name: &str, on_call: &[&str]) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            timezone: "Europe/London".into(),
            on_call: on_call.iter().map(|u| (*u).to_owned()).collect(),
            teams: Vec::new(),
            readers: None,
        }
    }

    pub fn with_team(mut self, id: &str, users: &[&str]) -> Self {
        self.teams.push(OnCallTeam {
            id: id.into(),
            users: users.iter().map(|u| (*u).to_owned()).collect(),
        });
        self
    }

    pub fn readable_only_by(mut self, readers: &[&str]) -> Self {
        self.readers = Some(readers.iter().map(|u| (*u).to_owned()).collect());
        self
    }

    /// Every account on call, once each, direct users first.
    pub fn flat(&self) -> Vec<String> {
        let mut users: Vec<String> = Vec::new();
        let teams = self.teams.iter().flat_map(|t| t.users.iter());
        for user in self.on_call.iter().chain(teams) {
            if !users.contains(user) {
                users.push(user.clone());
            }
        }
        users
    }
}

/// One call the fake answered.
#[derive(Clone, Debug)]
pub struct JsmCall {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The authenticated caller's account id.
    pub caller: Option<String>,
    pub status: u16,
}
