//! Line charts (one line per series, optional target) and the budget burn chart.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axes::{self, Plot, Reference, XScale};
use super::canvas::{self, Area, LegendEntry, Mark, PALETTE, TEXT_SIZE, draw_text, text_style};
use super::data::{Table, XAxisKind, XColumn, is_monthly};
use super::{ChartError, ChartSpec};

/// One line: its points in x order; `None` values break it.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub name: String,
    pub points: Vec<(f64, Option<f64>)>,
}

pub(crate) struct LineChart {
    scale: XScale,
    lines: Vec<Line>,
    /// A target that changes along x (the `target` column), drawn as its own dashed line.
    target_line: Option<Line>,
    target: Option<f64>,
}

/// The x scale for a read x column.
pub(crate) fn scale_of(x: &XColumn) -> XScale {
    match &x.axis {
        XAxisKind::Category(labels) => XScale::Category(labels.clone()),
        XAxisKind::Time => XScale::Time {
            monthly: is_monthly(&x.positions),
        },
    }
}

impl LineChart {
    pub fn read(table: &Table, spec: &ChartSpec) -> Result<Option<Self>, ChartError> {
        let x = table.x("x", spec.time_zone)?;
        let y = table.numbers("y")?;
        let series = table.texts_if_present("series")?;
        let target_column = table.numbers_if_present("target")?;

        let mut lines: Vec<Line> = Vec::new();
        let mut target_points: Vec<(f64, Option<f64>)> = Vec::new();
        for (row, position) in x.positions.iter().enumerate() {
            // A row without x has nowhere to go.
            let Some(position) = *position else { continue };
            let name = match &series {
                Some(names) => names[row].clone().unwrap_or_else(|| "(none)".to_owned()),
                None => String::new(),
            };
            let line = match lines.iter().position(|l| l.name == name) {
                Some(i) => &mut lines[i],
                None => {
                    lines.push(Line {
                        name,
                        points: Vec::new(),
                    });
                    let last = lines.len() - 1;
                    &mut lines[last]
                }
            };
            line.points.push((position, y[row]));
            if let Some(target) = target_column.as_ref().and_then(|t| t[row]) {
                target_points.push((position, Some(target)));
            }
        }
        if lines
            .iter()
            .all(|l| l.points.iter().all(|(_, y)| y.is_none()))
        {
            return Ok(None);
        }
        for line in &mut lines {
            line.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        target_points.sort_by(|a, b| a.0.total_cmp(&b.0));
        target_points.dedup_by(|a, b| a.0 == b.0);

        let (target, target_line) = match spec.target {
            Some(target) => (Some(target), None),
            None => {
                let values: Vec<f64> = target_points.iter().filter_map(|(_, t)| *t).collect();
                match values.first() {
                    None => (None, None),
                    // A constant target is a plain reference line, labelled like the spec's own.
                    Some(first) if values.iter().all(|v| v == first) => (Some(*first), None),
                    Some(_) => (
                        None,
                        Some(Line {
                            name: "target".to_owned(),
                            points: target_points,
                        }),
                    ),
                }
            }
        };
        Ok(Some(Self {
            scale: scale_of(&x),
            lines,
            target_line,
            target,
        }))
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        spec: &ChartSpec,
    ) -> Result<(), ChartError> {
        let top = canvas::draw_frame(area, spec)?;
        let legend: Vec<LegendEntry> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| LegendEntry {
                label: line.name.clone(),
                color: PALETTE[i % PALETTE.len()],
                mark: Mark::Line,
            })
            .collect();
        let top = canvas::draw_legend(area, &legend, top)?;
        let references = axes::spec_references(spec, self.target);
        let all_lines = self.lines.iter().chain(&self.target_line);
        let x_range = axes::x_range(
            &self.scale,
            all_lines.clone().flat_map(|l| l.points.iter().map(|p| p.0)),
            false,
        );
        let y_values = all_lines
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .chain(references.iter().map(|r| r.value));
        let plot = axes::draw_axes(area, spec, top, &self.scale, x_range, y_values)?;

        axes::draw_reference_lines(area, &plot, &references)?;
        if let Some(target) = &self.target_line {
            draw_line(area, &plot, target, canvas::INK, true)?;
            if let Some((x, Some(y))) = target.points.last() {
                let label = format!(
                    "target {}",
                    super::format_value(*y, spec.unit, &spec.currency)
                );
                let style = text_style(
                    TEXT_SIZE - 1.0,
                    false,
                    canvas::INK,
                    HPos::Right,
                    VPos::Center,
                );
                draw_text(
                    area,
                    &label,
                    (plot.px(*x).min(plot.right - 2), plot.py(*y) - 10),
                    &style,
                )?;
            }
        }
        for (i, line) in self.lines.iter().enumerate() {
            draw_line(area, &plot, line, PALETTE[i % PALETTE.len()], false)?;
        }
        axes::draw_reference_labels(area, &plot, &references)?;
        Ok(())
    }
}

fn draw_line<DB: DrawingBackend>(
    area: &Area<DB>,
    plot: &Plot,
    line: &Line,
    color: RGBColor,
    dashed: bool,
) -> Result<(), ChartError> {
    let pixels: Vec<Option<(i32, i32)>> = line
        .points
        .iter()
        .map(|(x, y)| y.map(|y| (plot.px(*x), plot.py(y))))
        .collect();
    let dots = !dashed && canvas::wants_dots(pixels.len(), plot.width());
    canvas::polyline(area, &pixels, color, dashed, dots)
}

/// Budget burn: cumulative actual spend (solid), the forecast to month end (dashed), the budget.
pub(crate) struct BurnChart {
    actual: Line,
    forecast: Line,
    budget: Option<f64>,
}

impl BurnChart {
    pub fn read(table: &Table) -> Result<Option<Self>, ChartError> {
        let days = table.dates("day")?;
        let actual = table.numbers("actual")?;
        let forecast = table.numbers("forecast")?;
        let budget = table.numbers("budget")?;
        let mut rows: Vec<(f64, Option<f64>, Option<f64>)> = days
            .iter()
            .enumerate()
            .filter_map(|(row, day)| day.map(|day| (day, actual[row], forecast[row])))
            .collect();
        if rows.iter().all(|(_, a, f)| a.is_none() && f.is_none()) {
            return Ok(None);
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let line = |name: &str, pick: fn(&(f64, Option<f64>, Option<f64>)) -> Option<f64>| Line {
            name: name.to_owned(),
            points: rows.iter().map(|r| (r.0, pick(r))).collect(),
        };
        Ok(Some(Self {
            actual: line("actual", |r| r.1),
            forecast: line("forecast", |r| r.2),
            budget: budget.iter().flatten().copied().next(),
        }))
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        spec: &ChartSpec,
    ) -> Result<(), ChartError> {
        let top = canvas::draw_frame(area, spec)?;
        let (actual_color, forecast_color) = (PALETTE[0], PALETTE[1]);
        let legend = [
            LegendEntry {
                label: "actual".to_owned(),
                color: actual_color,
                mark: Mark::Line,
            },
            LegendEntry {
                label: "forecast".to_owned(),
                color: forecast_color,
                mark: Mark::Dashed,
            },
        ];
        let top = canvas::draw_legend(area, &legend, top)?;
        let mut references = axes::spec_references(spec, None);
        if let Some(budget) = self.budget {
            references.push(Reference {
                label: format!(
                    "budget {}",
                    super::format_value(budget, spec.unit, &spec.currency)
                ),
                value: budget,
                color: canvas::BAD,
            });
        }
        let scale = XScale::Time { monthly: false };
        let x_range = axes::x_range(&scale, self.actual.points.iter().map(|p| p.0), false);
        let y_values = [&self.actual, &self.forecast]
            .into_iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .chain(references.iter().map(|r| r.value));
        let plot = axes::draw_axes(area, spec, top, &scale, x_range, y_values)?;
        axes::draw_reference_lines(area, &plot, &references)?;
        draw_line(area, &plot, &self.forecast, forecast_color, true)?;
        draw_line(area, &plot, &self.actual, actual_color, false)?;
        axes::draw_reference_labels(area, &plot, &references)?;
        Ok(())
    }
}
