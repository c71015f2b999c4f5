//! Stacked area and stacked bar charts from long rows (x, series, y), pivoted to one band per
//! series.

use plotters::prelude::*;

use super::axes::{self, XScale};
use super::canvas::{self, Area, LegendEntry, Mark, OTHER, PALETTE};
use super::data::Table;
use super::series::scale_of;
use super::{ChartError, ChartKind, ChartSpec};

/// More bands than this and the colours stop telling them apart: the rest are summed as "other".
const MAX_SERIES: usize = 8;

pub(crate) struct StackedChart {
    scale: XScale,
    /// The distinct x positions, ascending.
    xs: Vec<f64>,
    /// One band per series, bottom first, each with a value per x (missing = 0).
    bands: Vec<Band>,
}

struct Band {
    name: String,
    values: Vec<f64>,
    color: RGBColor,
}

impl StackedChart {
    pub fn read(table: &Table, spec: &ChartSpec) -> Result<Option<Self>, ChartError> {
        let x = table.x("x", spec.time_zone)?;
        let series = table.texts("series")?;
        let y = table.numbers("y")?;
        let rows: Vec<(f64, String, f64)> = x
            .positions
            .iter()
            .enumerate()
            .filter_map(|(row, position)| {
                Some((
                    position.as_ref().copied()?,
                    series[row].clone().unwrap_or_default(),
                    y[row]?,
                ))
            })
            .collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let mut xs: Vec<f64> = rows.iter().map(|r| r.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();

        let mut named: Vec<(String, Vec<f64>)> = Vec::new();
        for (position, name, value) in &rows {
            let column = xs.partition_point(|x| x < position);
            let band = match named.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    named.push((name.clone(), vec![0.0; xs.len()]));
                    named.len() - 1
                }
            };
            named[band].1[column] += value;
        }
        // Largest at the bottom, where its changes read against a flat baseline.
        let total = |values: &[f64]| values.iter().map(|v| v.abs()).sum::<f64>();
        named.sort_by(|a, b| {
            total(&b.1)
                .total_cmp(&total(&a.1))
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut bands: Vec<Band> = Vec::new();
        let mut other: Option<Vec<f64>> = None;
        for (i, (name, values)) in named.into_iter().enumerate() {
            if i < MAX_SERIES {
                bands.push(Band {
                    name,
                    values,
                    color: PALETTE[i],
                });
            } else {
                let sum = other.get_or_insert_with(|| vec![0.0; xs.len()]);
                sum.iter_mut().zip(&values).for_each(|(s, v)| *s += v);
            }
        }
        if let Some(values) = other {
            bands.push(Band {
                name: "other".to_owned(),
                values,
                color: OTHER,
            });
        }
        Ok(Some(Self {
            scale: scale_of(&x),
            xs,
            bands,
        }))
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        spec: &ChartSpec,
    ) -> Result<(), ChartError> {
        let top = canvas::draw_frame(area, spec)?;
        let legend: Vec<LegendEntry> = self
            .bands
            .iter()
            .map(|b| LegendEntry {
                label: b.name.clone(),
                color: b.color,
                mark: Mark::Swatch,
            })
            .collect();
        let top = canvas::draw_legend(area, &legend, top)?;

        // Running tops of the stack: `stack[b][i]` is where band b ends at xs[i].
        let mut stack: Vec<Vec<f64>> = Vec::with_capacity(self.bands.len());
        let mut running = vec![0.0; self.xs.len()];
        for band in &self.bands {
            running
                .iter_mut()
                .zip(&band.values)
                .for_each(|(r, v)| *r += v);
            stack.push(running.clone());
        }
        let references = axes::spec_references(spec, spec.target);
        let bars = spec.kind == ChartKind::StackedBar;
        let x_range = axes::x_range(&self.scale, self.xs.iter().copied(), bars);
        let y_values = stack
            .iter()
            .flatten()
            .copied()
            .chain(references.iter().map(|r| r.value));
        let plot = axes::draw_axes(area, spec, top, &self.scale, x_range, y_values)?;

        let zeros = vec![0.0; self.xs.len()];
        for (b, band) in self.bands.iter().enumerate() {
            let lower = if b == 0 { &zeros } else { &stack[b - 1] };
            let upper = &stack[b];
            if bars {
                let gap = self
                    .xs
                    .windows(2)
                    .map(|w| w[1] - w[0])
                    .fold(f64::INFINITY, f64::min);
                let gap = if gap.is_finite() { gap } else { 1.0 };
                let half = ((gap * plot.x_unit() * 0.35) as i32).clamp(1, 40);
                for (i, x) in self.xs.iter().enumerate() {
                    let (y0, y1) = (plot.py(lower[i]), plot.py(upper[i]));
                    if y0 == y1 {
                        continue;
                    }
                    let centre = plot.px(*x);
                    area.draw(&Rectangle::new(
                        [(centre - half, y1), (centre + half, y0)],
                        band.color.filled(),
                    ))
                    .map_err(canvas::render_error)?;
                }
            } else {
                let mut outline: Vec<(i32, i32)> = self
                    .xs
                    .iter()
                    .zip(upper)
                    .map(|(x, y)| (plot.px(*x), plot.py(*y)))
                    .collect();
                let top_edge = outline.clone();
                outline.extend(
                    self.xs
                        .iter()
                        .zip(lower)
                        .rev()
                        .map(|(x, y)| (plot.px(*x), plot.py(*y))),
                );
                area.draw(&Polygon::new(outline, band.color.mix(0.75).filled()))
                    .map_err(canvas::render_error)?;
                area.draw(&PathElement::new(top_edge, band.color.stroke_width(1)))
                    .map_err(canvas::render_error)?;
            }
        }
        axes::draw_reference_lines(area, &plot, &references)?;
        axes::draw_reference_labels(area, &plot, &references)?;
        Ok(())
    }
}
