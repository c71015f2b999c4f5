//! Ground truth of cloud spend: each cost owner's daily line items for one month.
//!
//! Owners are the services (their own resources, tagged `service` and `team`), shared platform
//! spend (tag `shared=platform`), untagged spend, and account-level credits. A month of one owner
//! is drawn from its own random stream, so a month file can be written by iterating the owners
//! without holding any other month in memory.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::calendar::{Month, PERIOD_DAYS, START_DAY, days_from_civil, is_working_day};
use crate::money::{Money, ONE, cost};
use crate::org::{Org, shared_owner_count, untagged_owner_count};
use crate::random::{Stream, hex, stream};

/// The AWS payer account.
pub const AWS_BILLING_ACCOUNT: &str = "111122223333";
/// The Azure billing account.
pub const AZURE_BILLING_ACCOUNT: &str = "/providers/Microsoft.Billing/billingAccounts/8611537";
/// The AWS account holding shared platform and untagged spend.
pub const PLATFORM_ACCOUNT: &str = "200000000001";
/// EC2 on-demand price per hour in units of 1e-7 USD before and from [`ec2_price_cut_day`].
pub const EC2_PRICES: (i64, i64) = (960_000, 844_800);

/// 2026-02-01, when the EC2 unit price drops 12%.
pub fn ec2_price_cut_day() -> i64 {
    days_from_civil(2026, 2, 1)
}

/// 2025-08-01, when a savings plan starts covering some services' EC2 usage.
pub fn savings_plan_start_day() -> i64 {
    days_from_civil(2025, 8, 1)
}

/// Cloud provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon Web Services (FOCUS ProviderName `AWS`).
    Aws,
    /// Microsoft Azure (FOCUS ProviderName `Microsoft`).
    Microsoft,
}

impl Provider {
    /// FOCUS ProviderName.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Aws => "AWS",
            Provider::Microsoft => "Microsoft",
        }
    }
}

/// How a line item is tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    /// `{"service": ..., "team": ...}`.
    Service {
        /// Service name.
        service: String,
        /// Team name.
        team: String,
    },
    /// `{"team": ...}` only: no service tag, so unallocated.
    TeamOnly {
        /// Team name.
        team: String,
    },
    /// `{"shared": "platform"}`.
    Shared,
    /// No tags at all.
    Untagged,
}

impl Tags {
    /// Where the truth allocates this line: the service, `shared` or `unallocated`.
    pub fn allocation(&self) -> &str {
        match self {
            Tags::Service { service, .. } => service,
            Tags::Shared => "shared",
            Tags::TeamOnly { .. } | Tags::Untagged => "unallocated",
        }
    }
}

/// One daily FOCUS line item.
#[derive(Debug, Clone)]
pub struct CostLine {
    /// Provider.
    pub provider: Provider,
    /// BillingAccountId.
    pub billing_account: &'static str,
    /// SubAccountId.
    pub sub_account: String,
    /// Day (days since the epoch) of ChargePeriodStart.
    pub day: i64,
    /// `true` for ChargeCategory `Credit`, else `Usage`.
    pub is_credit: bool,
    /// ServiceName, e.g. `Amazon EC2`.
    pub service_name: &'static str,
    /// ServiceCategory.
    pub service_category: &'static str,
    /// RegionId.
    pub region: &'static str,
    /// ResourceId.
    pub resource_id: Option<String>,
    /// ConsumedQuantity in units of 1e-3.
    pub quantity_milli: Option<i64>,
    /// ConsumedUnit.
    pub unit: Option<&'static str>,
    /// ListUnitPrice in units of 1e-7.
    pub list_unit_price_e7: Option<i64>,
    /// ListCost.
    pub list_cost: Money,
    /// BilledCost.
    pub billed_cost: Money,
    /// EffectiveCost.
    pub effective_cost: Money,
    /// PricingCategory.
    pub pricing_category: Option<&'static str>,
    /// CommitmentDiscountId.
    pub commitment_discount_id: Option<&'static str>,
    /// Tags.
    pub tags: Tags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ec2,
    Rds,
    S3,
    Lambda,
    AzureVm,
}

/// A long-lived cloud resource of a service.
#[derive(Debug, Clone)]
struct Resource {
    kind: Kind,
    resource_id: String,
    size: i64,
    covered: bool,
    team_only_tag: bool,
}

/// Who a month's line items belong to, in file order.
#[derive(Debug, Clone, Copy)]
pub enum CostOwner {
    /// A service (index in the organisation).
    Service(usize),
    /// The n-th shared platform (NAT gateway, EKS control plane).
    Shared(usize),
    /// The n-th untagged spender (logs bucket, CloudWatch).
    Untagged(usize),
    /// Account-level credits.
    Credits,
}

/// All owners, in the order their rows appear in each month file.
pub fn owners(org: &Org) -> Vec<CostOwner> {
    let services = org.services.len();
    let mut out: Vec<CostOwner> = (0..services).map(CostOwner::Service).collect();
    out.extend((0..shared_owner_count(services)).map(CostOwner::Shared));
    out.extend((0..untagged_owner_count(services)).map(CostOwner::Untagged));
    out.push(CostOwner::Credits);
    out
}

const SAVINGS_PLAN: &str = "arn:aws:savingsplans::111122223333:savingsplan/sp-0a1b2c3d4e5f6a7b8";

fn aws_sub_account(team: usize) -> String {
    format!("{:012}", 300_000_000_000_u64 + team as u64)
}

fn resources(org: &Org, service: usize, seed: u64) -> (Vec<Resource>, &'static str) {
    let mut rng = stream(seed, Stream::Resources, service as u64, 0);
    let params = org.params;
    // Few lines per service at small scales (a service mostly runs on one or two cloud services).
    let count = if params.max_cost_lines - params.min_cost_lines <= 2 {
        let mut count = params.min_cost_lines;
        while count < params.max_cost_lines && rng.random_bool(0.4) {
            count += 1;
        }
        count
    } else {
        rng.random_range(params.min_cost_lines..=params.max_cost_lines)
    };
    let region = if rng.random_bool(0.8) {
        "us-east-1"
    } else {
        "eu-west-1"
    };
    let name = &org.services[service].name;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let kind = if service % 11 == 3 && i + 1 == count {
            Kind::AzureVm
        } else {
            match i % 4 {
                0 if !service.is_multiple_of(4) && rng.random_bool(0.25) => Kind::Lambda,
                0 => Kind::Ec2,
                1 => Kind::Rds,
                2 => Kind::S3,
                _ => Kind::Ec2,
            }
        };
        let (resource_id, size) = match kind {
            Kind::Ec2 => (format!("i-0{}", hex(&mut rng, 16)), rng.random_range(1..=4)),
            Kind::Rds => (
                format!(
                    "arn:aws:rds:{region}:{}:db:{name}-{i}",
                    aws_sub_account(org.services[service].team)
                ),
                1,
            ),
            Kind::S3 => (
                format!("arn:aws:s3:::acme-{name}-{i}"),
                rng.random_range(50..2_000),
            ),
            Kind::Lambda => (
                format!(
                    "arn:aws:lambda:{region}:{}:function:{name}-{i}",
                    aws_sub_account(org.services[service].team)
                ),
                rng.random_range(200_000..5_000_000),
            ),
            Kind::AzureVm => (
                format!(
                    "/subscriptions/00000000-0000-4000-8000-{:012}/resourcegroups/{name}/providers/microsoft.compute/virtualmachines/{name}-vm-{i}",
                    org.services[service].team
                ),
                rng.random_range(1..=2),
            ),
        };
        out.push(Resource {
            kind,
            resource_id,
            size,
            covered: kind == Kind::Ec2 && service.is_multiple_of(4),
            team_only_tag: i > 0 && rng.random_bool(0.08),
        });
    }
    (out, region)
}

fn noise(rng: &mut ChaCha8Rng, day: i64, weekend_factor: f64) -> f64 {
    let base = 0.85 + 0.3 * rng.random::<f64>();
    if is_working_day(day) {
        base
    } else {
        base * weekend_factor
    }
}

fn usage_line(
    provider: Provider,
    day: i64,
    quantity_milli: i64,
    price_e7: i64,
    tags: Tags,
) -> CostLine {
    let list_cost = cost(quantity_milli, price_e7);
    CostLine {
        provider,
        billing_account: match provider {
            Provider::Aws => AWS_BILLING_ACCOUNT,
            Provider::Microsoft => AZURE_BILLING_ACCOUNT,
        },
        sub_account: PLATFORM_ACCOUNT.to_string(),
        day,
        is_credit: false,
        service_name: "",
        service_category: "",
        region: "us-east-1",
        resource_id: None,
        quantity_milli: Some(quantity_milli),
        unit: None,
        list_unit_price_e7: Some(price_e7),
        list_cost,
        billed_cost: list_cost,
        effective_cost: list_cost,
        pricing_category: Some("Standard"),
        commitment_discount_id: None,
        tags,
    }
}

fn service_month(org: &Org, service: usize, month: &Month, seed: u64, out: &mut Vec<CostLine>) {
    let (resources, region) = resources(org, service, seed);
    let team = org.services[service].team;
    let team_name = org.teams[team].name.clone();
    let service_name = org.services[service].name.clone();
    let mut rng = stream(seed, Stream::Bill, service as u64, month.index as u64);
    let days_in_month = month.next_first_day - month.first_day;
    for day in month.first_day..month.next_first_day {
        for resource in &resources {
            let tags = if resource.team_only_tag {
                Tags::TeamOnly {
                    team: team_name.clone(),
                }
            } else {
                Tags::Service {
                    service: service_name.clone(),
                    team: team_name.clone(),
                }
            };
            let f = noise(&mut rng, day, 0.8);
            let (provider, quantity, price, unit, name, category) = match resource.kind {
                Kind::Ec2 => {
                    let price = if day >= ec2_price_cut_day() {
                        EC2_PRICES.1
                    } else {
                        EC2_PRICES.0
                    };
                    (
                        Provider::Aws,
                        resource.size as f64 * 24_000.0 * f,
                        price,
                        "Hours",
                        "Amazon EC2",
                        "Compute",
                    )
                }
                Kind::Rds => (
                    Provider::Aws,
                    resource.size as f64 * 24_000.0,
                    1_360_000,
                    "Hours",
                    "Amazon RDS",
                    "Databases",
                ),
                Kind::S3 => {
                    let growth = 1.0 + 0.6 * (day - START_DAY) as f64 / PERIOD_DAYS as f64;
                    let gb_month = resource.size as f64 * growth / days_in_month as f64;
                    (
                        Provider::Aws,
                        gb_month * 1_000.0,
                        230_000,
                        "GB-Mo",
                        "Amazon S3",
                        "Storage",
                    )
                }
                Kind::Lambda => (
                    Provider::Aws,
                    resource.size as f64 * 1_000.0 * f,
                    2,
                    "Requests",
                    "AWS Lambda",
                    "Compute",
                ),
                Kind::AzureVm => (
                    Provider::Microsoft,
                    resource.size as f64 * 24_000.0,
                    1_920_000,
                    "Hours",
                    "Virtual Machines",
                    "Compute",
                ),
            };
            let mut line = usage_line(provider, day, quantity.round() as i64, price, tags);
            line.service_name = name;
            line.service_category = category;
            line.unit = Some(unit);
            line.resource_id = Some(resource.resource_id.clone());
            line.region = if provider == Provider::Microsoft {
                "eastus"
            } else {
                region
            };
            line.sub_account = match provider {
                Provider::Aws => aws_sub_account(team),
                Provider::Microsoft => format!("/subscriptions/00000000-0000-4000-8000-{team:012}"),
            };
            // Commitment-covered usage: billed on demand, effective cost carried by the commitment.
            if resource.covered && day >= savings_plan_start_day() {
                line.effective_cost = 0;
                line.pricing_category = Some("Committed");
                line.commitment_discount_id = Some(SAVINGS_PLAN);
            }
            out.push(line);
        }
    }
}

fn shared_month(owner: usize, month: &Month, seed: u64, out: &mut Vec<CostLine>) {
    let mut rng = stream(
        seed,
        Stream::Bill,
        1_000_000 + owner as u64,
        month.index as u64,
    );
    for day in month.first_day..month.next_first_day {
        let gateways = 2 + rng.random_range(0..2);
        let mut nat = usage_line(Provider::Aws, day, gateways * 24_000, 450_000, Tags::Shared);
        nat.service_name = "Amazon Virtual Private Cloud";
        nat.service_category = "Networking";
        nat.unit = Some("Hours");
        nat.resource_id = Some(format!(
            "arn:aws:ec2:us-east-1:{PLATFORM_ACCOUNT}:natgateway/nat-0platform{owner:04}"
        ));
        out.push(nat);
        let mut eks = usage_line(Provider::Aws, day, 24_000, 1_000_000, Tags::Shared);
        eks.service_name = "Amazon Elastic Kubernetes Service";
        eks.service_category = "Compute";
        eks.unit = Some("Hours");
        eks.resource_id = Some(format!(
            "arn:aws:eks:us-east-1:{PLATFORM_ACCOUNT}:cluster/platform-{owner}"
        ));
        out.push(eks);
    }
}

fn untagged_month(owner: usize, month: &Month, seed: u64, out: &mut Vec<CostLine>) {
    let mut rng = stream(
        seed,
        Stream::Bill,
        2_000_000 + owner as u64,
        month.index as u64,
    );
    let days_in_month = month.next_first_day - month.first_day;
    for day in month.first_day..month.next_first_day {
        let gb =
            (rng.random_range(5_000..40_000) as f64 * noise(&mut rng, day, 0.7)).round() as i64;
        let mut logs = usage_line(Provider::Aws, day, gb, 5_000_000, Tags::Untagged);
        logs.service_name = "Amazon CloudWatch";
        logs.service_category = "Management and Governance";
        logs.unit = Some("GB");
        logs.resource_id = Some(format!(
            "arn:aws:logs:us-east-1:{PLATFORM_ACCOUNT}:log-group:/legacy/{owner}"
        ));
        out.push(logs);
        let mut bucket = usage_line(
            Provider::Aws,
            day,
            3_000_000 / days_in_month,
            230_000,
            Tags::Untagged,
        );
        bucket.service_name = "Amazon S3";
        bucket.service_category = "Storage";
        bucket.unit = Some("GB-Mo");
        bucket.resource_id = Some(format!("arn:aws:s3:::acme-legacy-backups-{owner}"));
        out.push(bucket);
    }
}

fn credits_month(org: &Org, month: &Month, out: &mut Vec<CostLine>) {
    if month.index % 4 != 1 {
        return;
    }
    let amount = -25 * ONE * org.services.len().div_ceil(12) as Money;
    let mut credit = usage_line(Provider::Aws, month.first_day, 0, 0, Tags::Untagged);
    credit.is_credit = true;
    credit.service_name = "Amazon EC2";
    credit.service_category = "Compute";
    credit.quantity_milli = None;
    credit.list_unit_price_e7 = None;
    credit.list_cost = 0;
    credit.billed_cost = amount;
    credit.effective_cost = amount;
    credit.pricing_category = None;
    out.push(credit);
}

/// The line items of one owner for one month, in file order (by day, then resource).
pub fn month_lines(org: &Org, owner: CostOwner, month: &Month, seed: u64) -> Vec<CostLine> {
    let mut out = Vec::new();
    match owner {
        CostOwner::Service(service) => service_month(org, service, month, seed, &mut out),
        CostOwner::Shared(n) => shared_month(n, month, seed, &mut out),
        CostOwner::Untagged(n) => untagged_month(n, month, seed, &mut out),
        CostOwner::Credits => credits_month(org, month, &mut out),
    }
    out
}
