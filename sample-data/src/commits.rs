//! Who wrote each change, and what its commit and pull request say: the git identity shared by
//! every writer (the git repository, GitHub JSON, PagerDuty), so they all name the same people.
//!
//! Everything here is a pure function of the organisation, the repo and the change's index in
//! [`RepoHistory::changes`]: no random stream is drawn (the ground truth's counts stay as they
//! were), and nothing depends on [`Change::sha`], which is itself computed from this identity.
//!
//! Developers belong to teams: team `t` has [`team_size`] developers, each with a name unique in the
//! organisation and a login derived from it (`maria-garcia`, email `maria-garcia@acme.example`). A
//! change is authored by a developer of the team owning the first service it touches; its pull
//! request is reviewed by another developer of that team.

use crate::delivery::{Change, RepoHistory};
use crate::org::Org;
use crate::random::splitmix64;

/// The email domain of every developer.
pub const EMAIL_DOMAIN: &str = "acme.example";

const FIRST_NAMES: [&str; 48] = [
    "Maria", "James", "Aisha", "Wei", "Sofia", "Liam", "Priya", "Mateo", "Hana", "Noah", "Fatima",
    "Lucas", "Yuki", "Elena", "Omar", "Chloe", "Arjun", "Ingrid", "Kofi", "Leila", "Daniel", "Mei",
    "Tomas", "Amara", "Jonas", "Nadia", "Ravi", "Clara", "Emeka", "Sara", "Hugo", "Zainab",
    "Felix", "Ana", "Kenji", "Olga", "Samuel", "Lina", "Diego", "Freya", "Tariq", "Julia",
    "Mohammed", "Eva", "Pedro", "Ines", "Viktor", "Grace",
];

const LAST_NAMES: [&str; 48] = [
    "Garcia",
    "Smith",
    "Khan",
    "Chen",
    "Rossi",
    "Murphy",
    "Patel",
    "Silva",
    "Tanaka",
    "Williams",
    "Haddad",
    "Martin",
    "Sato",
    "Petrova",
    "Farouk",
    "Dubois",
    "Sharma",
    "Larsen",
    "Mensah",
    "Karimi",
    "Cohen",
    "Wong",
    "Novak",
    "Okafor",
    "Berg",
    "Ivanova",
    "Iyer",
    "Schmidt",
    "Nwosu",
    "Lindqvist",
    "Moreau",
    "Bello",
    "Weber",
    "Costa",
    "Watanabe",
    "Popescu",
    "Adeyemi",
    "Nilsson",
    "Herrera",
    "Andersen",
    "Aziz",
    "Fischer",
    "Rahman",
    "Kowalski",
    "Santos",
    "Fernandes",
    "Horvat",
    "Lee",
];

/// A step coprime with 48 × 48 = 2,304, so consecutive developers get unrelated names and no name
/// repeats among the first 2,304 developers.
const NAME_STEP: usize = 1_019;

/// Phrases for the words of generated head branches (`feature/retry-123`).
const BRANCH_PHRASES: [(&str, &str); 12] = [
    ("totals", "Order totals"),
    ("retry", "Retry handling"),
    ("timeouts", "Timeout tuning"),
    ("pagination", "Pagination"),
    ("logging", "Structured logging"),
    ("limits", "Rate limits"),
    ("upgrade-deps", "Dependency upgrades"),
    ("refactor", "Refactoring"),
    ("flags", "Feature flags"),
    ("migration", "Schema migration"),
    ("cleanup", "Cleanup"),
    ("perf", "Performance"),
];

/// A developer of the organisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Developer {
    /// Display name, e.g. `Maria Garcia`.
    pub name: String,
    /// Login (GitHub login, email local part), e.g. `maria-garcia`.
    pub login: String,
}

impl Developer {
    /// `{login}@acme.example`.
    pub fn email(&self) -> String {
        format!("{}@{EMAIL_DOMAIN}", self.login)
    }

    /// The git identity line without the time: `Maria Garcia <maria-garcia@acme.example>`.
    pub fn signature(&self) -> String {
        format!("{} <{}>", self.name, self.email())
    }
}

/// What a change's pull request says about its people and title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestIdentity {
    /// PR title, e.g. `Retry handling (feature 123)` or `Fix INC-12: Elevated 5xx rate on cart`.
    pub title: String,
    /// Who opened the PR (also the squash commit's author).
    pub author: Developer,
    /// Who left the first review (never the author); `first_review_at` is that review's time.
    pub reviewer: Developer,
}

/// A change's git identity: who wrote it and what its commit message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitIdentity {
    /// Author and committer of the commit.
    pub author: Developer,
    /// The message's one line: `{pr title} (#{number})` for a PR commit, else `Update {paths}`.
    pub title: String,
    /// The PR, unless the change was pushed directly.
    pub pull_request: Option<PullRequestIdentity>,
}

impl CommitIdentity {
    /// The full commit message as git stores it: the title and a newline.
    pub fn message(&self) -> String {
        format!("{}\n", self.title)
    }
}

/// Developers in team `team`: 5 to 8.
pub fn team_size(team: usize) -> usize {
    5 + team % 4
}

/// Organisation-wide number of the first developer of `team`.
fn first_developer(team: usize) -> usize {
    // Sum of team_size over teams before `team`: each full cycle of 4 teams has 5+6+7+8 = 26.
    let (cycles, rest) = (team / 4, team % 4);
    cycles * 26 + (0..rest).map(|r| 5 + r).sum::<usize>()
}

/// Developer `number` of the organisation (numbered team after team).
fn developer_number(number: usize) -> Developer {
    let combinations = FIRST_NAMES.len() * LAST_NAMES.len();
    let scrambled = (number % combinations) * NAME_STEP % combinations;
    let first = FIRST_NAMES[scrambled % FIRST_NAMES.len()];
    let last = LAST_NAMES[scrambled / FIRST_NAMES.len()];
    let round = number / combinations;
    let (name, login) = if round == 0 {
        (format!("{first} {last}"), format!("{first}-{last}"))
    } else {
        // Beyond 2,304 developers names repeat, so a number keeps logins unique.
        let n = round + 1;
        (format!("{first} {last} {n}"), format!("{first}-{last}-{n}"))
    };
    Developer {
        name,
        login: login.to_lowercase(),
    }
}

/// Developer `member` (0-based, below [`team_size`]) of team `team`.
pub fn developer(team: usize, member: usize) -> Developer {
    developer_number(first_developer(team) + member % team_size(team))
}

/// Every developer of team `team`.
pub fn team_developers(team: usize) -> Vec<Developer> {
    (0..team_size(team)).map(|m| developer(team, m)).collect()
}

/// The team owning the first service a change touches.
pub fn change_team(org: &Org, history: &RepoHistory, change: &Change) -> usize {
    let local = change.services.first().copied().unwrap_or(0);
    let service = org.repos[history.repo].services[local];
    org.services[service].team
}

/// The title of a pull request from its head branch: `feature/retry-123` →
/// `Retry handling (feature 123)`; a hotfix (`incident` = its key and title, e.g. `INC-12` and
/// `Elevated 5xx rate on cart`) → `Fix INC-12: Elevated 5xx rate on cart`.
pub fn pull_request_title(head_branch: &str, incident: Option<(&str, &str)>) -> String {
    if let Some((key, title)) = incident {
        return format!("Fix {key}: {title}");
    }
    let (kind, rest) = head_branch
        .split_once('/')
        .unwrap_or(("change", head_branch));
    let (word, number) = match rest.rsplit_once('-') {
        Some((word, number)) if number.bytes().all(|b| b.is_ascii_digit()) => (word, number),
        _ => (rest, ""),
    };
    let phrase = BRANCH_PHRASES
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, phrase)| phrase.to_string())
        .unwrap_or_else(|| {
            let spaced = word.replace('-', " ");
            let mut chars = spaced.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        });
    if number.is_empty() {
        format!("{phrase} ({kind})")
    } else {
        format!("{phrase} ({kind} {number})")
    }
}

/// The `INC-<n>` key and title of the incident a hotfix change references, if it is in `history`.
fn referenced_incident<'a>(
    history: &'a RepoHistory,
    change: &'a Change,
) -> Option<(&'a str, &'a str)> {
    let key = change.incident_refs.first()?;
    let id: u64 = key.strip_prefix("INC-")?.parse().ok()?;
    history
        .services
        .iter()
        .flat_map(|s| &s.incidents)
        .find(|i| i.id == id)
        .map(|i| (key.as_str(), i.title.as_str()))
}

/// The git identity of change `index` of `history`: its author, commit title and PR people.
///
/// Deterministic in (repo, index): the author is picked by a hash of both, the reviewer is another
/// member of the same team.
pub fn commit_identity(org: &Org, history: &RepoHistory, index: usize) -> CommitIdentity {
    let change = &history.changes[index];
    let team = change_team(org, history, change);
    let size = team_size(team);
    let hash = splitmix64(((history.repo as u64) << 40) ^ index as u64 ^ 0x5eed_c0de);
    let author_member = (hash % size as u64) as usize;
    let author = developer(team, author_member);
    match &change.pr {
        Some(pr) => {
            let other = 1 + ((hash >> 32) % (size as u64 - 1)) as usize;
            let reviewer = developer(team, (author_member + other) % size);
            let pr_title =
                pull_request_title(&pr.head_branch, referenced_incident(history, change));
            CommitIdentity {
                author: author.clone(),
                title: format!("{pr_title} (#{})", pr.number),
                pull_request: Some(PullRequestIdentity {
                    title: pr_title,
                    author,
                    reviewer,
                }),
            }
        }
        None => CommitIdentity {
            author,
            title: format!("Update {}", change.paths.join(", ")),
            pull_request: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn developer_names_are_unique_across_a_large_organisation() {
        let teams = 260;
        let mut logins = BTreeSet::new();
        let mut names = BTreeSet::new();
        for team in 0..teams {
            assert_eq!(
                first_developer(team + 1) - first_developer(team),
                team_size(team)
            );
            for d in team_developers(team) {
                assert!(
                    d.login
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit())
                );
                names.insert(d.name);
                logins.insert(d.login);
            }
        }
        assert_eq!(logins.len(), first_developer(teams));
        assert_eq!(names.len(), first_developer(teams));
        assert_eq!(
            developer(0, 0).email(),
            format!("{}@acme.example", developer(0, 0).login)
        );
    }

    #[test]
    fn pull_request_titles_come_from_head_branches() {
        assert_eq!(
            pull_request_title("feature/retry-123", None),
            "Retry handling (feature 123)"
        );
        assert_eq!(
            pull_request_title("fix/upgrade-deps-7", None),
            "Dependency upgrades (fix 7)"
        );
        assert_eq!(
            pull_request_title(
                "hotfix/inc-12",
                Some(("INC-12", "cart errors after deploy"))
            ),
            "Fix INC-12: cart errors after deploy"
        );
        assert_eq!(
            pull_request_title("spike/new-idea", None),
            "New idea (spike)"
        );
    }

    #[test]
    fn identities_are_stable_and_reviewers_differ_from_authors() {
        let org = Org::plan(crate::Scale::Small);
        let mut ids = crate::delivery::Ids::default();
        let history = crate::delivery::generate_repo(&org, 2, crate::DEFAULT_SEED, &mut ids);
        let (mut prs, mut hotfixes, mut authors) = (0, 0, BTreeSet::new());
        for (index, change) in history.changes.iter().enumerate() {
            let identity = commit_identity(&org, &history, index);
            assert_eq!(identity, commit_identity(&org, &history, index));
            let team = change_team(&org, &history, change);
            assert!(team_developers(team).contains(&identity.author));
            authors.insert(identity.author.login.clone());
            match (&change.pr, &identity.pull_request) {
                (Some(pr), Some(people)) => {
                    prs += 1;
                    assert_ne!(people.author, people.reviewer);
                    assert!(team_developers(team).contains(&people.reviewer));
                    assert_eq!(identity.title, format!("{} (#{})", people.title, pr.number));
                    if let Some(key) = change.incident_refs.first() {
                        hotfixes += 1;
                        assert!(
                            people.title.starts_with(&format!("Fix {key}: ")),
                            "{}",
                            people.title
                        );
                    }
                }
                (None, None) => assert!(identity.title.starts_with("Update ")),
                _ => panic!("PR and identity disagree for change {index}"),
            }
            assert_eq!(identity.message(), format!("{}\n", identity.title));
        }
        assert!(
            prs > 100 && hotfixes > 0 && authors.len() > 3,
            "{prs} {hotfixes} {authors:?}"
        );
    }
}
