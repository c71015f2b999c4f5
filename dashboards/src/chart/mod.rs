//! One panel's query result drawn as a chart: SVG to inline in pages, PNG for email and slides.
//!
//! Each kind reads the columns a panel's SQL returns by name (see [`ChartKind`]); the drawing is
//! the same on both backends because both lay text out with the embedded DejaVu font.

mod axes;
mod bar;
mod calendar;
mod canvas;
mod data;
mod format;
mod png_file;
mod raster;
mod series;
mod stacked;
mod tile;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use plotters::prelude::*;

use canvas::Area;
use data::Table;

/// How a panel draws its rows, and which columns it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// `x`, `y`, optional `series` and `target`.
    Line,
    /// `x`, `series`, `y`, one row per x and series.
    StackedArea,
    /// `x`, `series`, `y`, one row per x and series.
    StackedBar,
    /// `label`, `value` (may be negative), optional `detail`: horizontal bars.
    Bar,
    /// One row: `value`, optional `previous`, `target`, `level`, `better`.
    Stat,
    /// Any columns, as a text grid.
    Table,
    /// `day`, cumulative `actual` and `forecast`, the month's `budget`.
    Burn,
    /// `day`, `value`: a weeks × weekdays heat map.
    Calendar,
}

/// What the values measure, which decides how they print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    #[default]
    Number,
    Count,
    Hours,
    Days,
    PerDay,
    /// Values are fractions: 0.153 prints "15.3 %".
    Percent,
    /// In [`ChartSpec::currency`].
    Currency,
}

/// A labelled horizontal line drawn across a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub label: String,
    pub value: f64,
}

/// What to draw and how: the panel's kind, words, unit, reference lines and size.
#[derive(Debug, Clone)]
pub struct ChartSpec {
    pub kind: ChartKind,
    /// Drawn on top and written as the SVG's `<title>`.
    pub title: String,
    /// What the chart shows, written as the SVG's `<desc>`.
    pub description: String,
    pub unit: Unit,
    /// ISO 4217 code for [`Unit::Currency`].
    pub currency: String,
    /// A target line (line, bar), or a stat tile's target.
    pub target: Option<f64>,
    /// Extra labelled horizontal lines.
    pub thresholds: Vec<Threshold>,
    /// Timestamps on x are shown in this zone.
    pub time_zone: chrono_tz::Tz,
    pub width: u32,
    pub height: u32,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// A column the kind needs is missing or has the wrong type.
    #[error("column `{column}`: {expected}")]
    Column { column: String, expected: String },
    #[error("drawing failed: {0}")]
    Render(String),
}

/// The chart as a standalone SVG document that scales in a page and carries its title and
/// description for screen readers.
pub fn svg(
    spec: &ChartSpec,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<String, ChartError> {
    let chart = Prepared::from_rows(spec, schema, batches)?;
    let mut document = String::new();
    {
        let root =
            SVGBackend::with_string(&mut document, (spec.width, spec.height)).into_drawing_area();
        chart.draw(&root, spec)?;
        root.present().map_err(canvas::render_error)?;
    }
    Ok(accessible(document, spec))
}

/// The chart as a PNG image of the spec's size.
pub fn png(
    spec: &ChartSpec,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<Vec<u8>, ChartError> {
    let chart = Prepared::from_rows(spec, schema, batches)?;
    let mut rgb = vec![0u8; spec.width as usize * spec.height as usize * 3];
    {
        let root = raster::PngCanvas::new(&mut rgb, (spec.width, spec.height)).into_drawing_area();
        chart.draw(&root, spec)?;
        root.present().map_err(canvas::render_error)?;
    }
    png_file::encode_rgb(spec.width, spec.height, &rgb)
}

/// The value formatted in the unit, as charts and tiles show it (e.g. "12.5 h", "15.3 %", "$1,234.56").
pub fn format_value(value: f64, unit: Unit, currency: &str) -> String {
    format::format_in_unit(value, unit, currency, None)
}

/// Sizes outside this range are a spec mistake: too small to hold a title, or a buffer of
/// hundreds of megabytes.
const MIN_SIDE: u32 = 64;
const MAX_SIDE: u32 = 8192;

/// The rows read and checked for the spec's kind, before anything is drawn; `None` is no data.
enum Prepared {
    NoData,
    Line(series::LineChart),
    Stacked(stacked::StackedChart),
    Burn(series::BurnChart),
    Bar(bar::BarChart),
    Stat(tile::StatTile),
    Table(tile::TableGrid),
    Calendar(calendar::CalendarChart),
}

impl Prepared {
    fn from_rows(
        spec: &ChartSpec,
        schema: &Schema,
        batches: &[RecordBatch],
    ) -> Result<Self, ChartError> {
        for (side, pixels) in [("width", spec.width), ("height", spec.height)] {
            if !(MIN_SIDE..=MAX_SIDE).contains(&pixels) {
                return Err(ChartError::Render(format!(
                    "{side} {pixels} is outside {MIN_SIDE}..={MAX_SIDE} pixels"
                )));
            }
        }
        canvas::register_fonts()?;
        let table = Table::new(schema, batches);
        // Columns are checked even with no rows: a panel whose SQL lacks one is broken whatever
        // the selection, and says so.
        let chart = match spec.kind {
            ChartKind::Line => series::LineChart::read(&table, spec)?.map(Self::Line),
            ChartKind::StackedArea | ChartKind::StackedBar => {
                stacked::StackedChart::read(&table, spec)?.map(Self::Stacked)
            }
            ChartKind::Burn => series::BurnChart::read(&table)?.map(Self::Burn),
            ChartKind::Bar => bar::BarChart::read(&table)?.map(Self::Bar),
            ChartKind::Stat => tile::StatTile::read(&table, spec)?.map(Self::Stat),
            ChartKind::Table => tile::TableGrid::read(&table)?.map(Self::Table),
            ChartKind::Calendar => calendar::CalendarChart::read(&table)?.map(Self::Calendar),
        };
        Ok(chart.unwrap_or(Self::NoData))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        spec: &ChartSpec,
    ) -> Result<(), ChartError> {
        match self {
            Self::NoData => canvas::draw_no_data(area, spec),
            Self::Line(chart) => chart.draw(area, spec),
            Self::Stacked(chart) => chart.draw(area, spec),
            Self::Burn(chart) => chart.draw(area, spec),
            Self::Bar(chart) => chart.draw(area, spec),
            Self::Stat(tile) => tile.draw(area, spec),
            Self::Table(grid) => grid.draw(area, spec),
            Self::Calendar(chart) => chart.draw(area, spec),
        }
    }
}

/// Adds `role="img"`, `<title>` and `<desc>` to plotters' document (it already writes width,
/// height and a `viewBox`, which is what lets a page scale it).
fn accessible(document: String, spec: &ChartSpec) -> String {
    let Some(tag_end) = document
        .find("<svg")
        .and_then(|start| document[start..].find('>').map(|end| start + end))
    else {
        return document;
    };
    let mut out =
        String::with_capacity(document.len() + spec.title.len() + spec.description.len() + 64);
    out.push_str(&document[..tag_end]);
    out.push_str(" role=\"img\">\n<title>");
    out.push_str(&escape_xml(&spec.title));
    out.push_str("</title>\n<desc>");
    out.push_str(&escape_xml(&spec.description));
    out.push_str("</desc>");
    out.push_str(&document[tag_end + 1..]);
    out
}

/// `text` escaped for XML and HTML content and attribute values (control characters dropped).
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
