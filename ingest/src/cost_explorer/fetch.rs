//! Calling Cost Explorer through the real SDK: credentials from the standard AWS chain, SigV4 for
//! service `ce`, throttling retried with exponential backoff, and the NextPageToken loop.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_costexplorer::types::{
    DateInterval, DimensionValues, Expression, Granularity, GroupDefinition, GroupDefinitionType,
};

use super::response::{self, CostAndUsagePage};
use super::{CostExplorerError, CostExplorerOptions, Window};

/// A Cost Explorer client for `options`.
pub async fn client(options: &CostExplorerOptions) -> Result<Client, CostExplorerError> {
    let retry = RetryConfig::standard()
        .with_max_attempts(options.max_attempts.max(1))
        .with_initial_backoff(options.initial_backoff);
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(options.region.clone()))
        .retry_config(retry);
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &options.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let mut shared = loader.load().await;
    if let Some(role_arn) = &options.role_arn {
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name("doracost-cost-explorer")
            .configure(&shared)
            .build()
            .await;
        shared = shared
            .into_builder()
            .credentials_provider(
                aws_sdk_costexplorer::config::SharedCredentialsProvider::new(provider),
            )
            .build();
    }
    Ok(Client::new(&shared))
}

/// The `GroupBy` of every request: the service tag, then the `SERVICE` dimension.
pub fn group_by(tag_key: &str) -> Vec<response::GroupDefinition> {
    vec![
        response::GroupDefinition {
            r#type: Some("TAG".into()),
            key: Some(tag_key.to_owned()),
        },
        response::GroupDefinition {
            r#type: Some("DIMENSION".into()),
            key: Some("SERVICE".into()),
        },
    ]
}

/// Every page of DAILY GetCostAndUsage over `window`, filtered to `linked_account` when given;
/// `on_page` sees each page as it arrives (page numbers from 1).
pub async fn cost_and_usage_pages(
    client: &Client,
    options: &CostExplorerOptions,
    window: &Window,
    linked_account: Option<&str>,
    on_page: &mut dyn FnMut(usize, CostAndUsagePage) -> Result<(), CostExplorerError>,
) -> Result<(), CostExplorerError> {
    let period = DateInterval::builder()
        .start(window.start.format("%Y-%m-%d").to_string())
        .end(window.end.format("%Y-%m-%d").to_string())
        .build()
        .map_err(|e| CostExplorerError::Request(e.to_string()))?;
    let mut metrics = vec![options.billed_metric.api_name()];
    if options.effective_metric != options.billed_metric {
        metrics.push(options.effective_metric.api_name());
    }
    let mut token: Option<String> = None;
    let mut page = 0;
    loop {
        page += 1;
        let mut request = client
            .get_cost_and_usage()
            .time_period(period.clone())
            .granularity(Granularity::Daily)
            .set_metrics(Some(metrics.iter().map(|m| (*m).to_owned()).collect()))
            .group_by(
                GroupDefinition::builder()
                    .r#type(GroupDefinitionType::Tag)
                    .key(&options.tag_key)
                    .build(),
            )
            .group_by(
                GroupDefinition::builder()
                    .r#type(GroupDefinitionType::Dimension)
                    .key("SERVICE")
                    .build(),
            )
            .set_next_page_token(token.clone());
        if let Some(account) = linked_account {
            request = request.filter(
                Expression::builder()
                    .dimensions(
                        DimensionValues::builder()
                            .key(aws_sdk_costexplorer::types::Dimension::LinkedAccount)
                            .values(account)
                            .build(),
                    )
                    .build(),
            );
        }
        let output = request.send().await.map_err(|err| {
            let what = describe_request(window, linked_account, page);
            CostExplorerError::Api {
                request: what,
                code: err.code().map(str::to_owned),
                message: err
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| DisplayErrorContext(&err).to_string()),
            }
        })?;
        let parsed = CostAndUsagePage::from(&output);
        token = parsed.next_page_token.clone().filter(|t| !t.is_empty());
        on_page(page, parsed)?;
        if token.is_none() {
            return Ok(());
        }
    }
}

/// Names one request in messages, e.g. `GetCostAndUsage 2025-06-01 to 2025-07-01 (end exclusive)
/// for linked account 1, page 2`.
pub fn describe_request(window: &Window, linked_account: Option<&str>, page: usize) -> String {
    let account = linked_account
        .map(|a| format!(" for linked account {a}"))
        .unwrap_or_default();
    format!(
        "GetCostAndUsage {} to {} (end exclusive){account}, page {page}",
        window.start, window.end
    )
}
