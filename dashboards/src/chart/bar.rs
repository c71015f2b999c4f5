//! Horizontal bars: one labelled row each, e.g. top cost movers, increases and decreases apart.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{
    self, AXIS, Area, GRID, INK, MUTED, PAD, PALETTE, TEXT_SIZE, draw_text, fit, text_style,
    text_width,
};
use super::data::Table;
use super::format::{decimals_for_step, format_in_unit, nice_ticks};
use super::{ChartError, ChartSpec};

pub(crate) struct BarChart {
    rows: Vec<BarRow>,
}

struct BarRow {
    label: String,
    value: f64,
    detail: Option<String>,
}

/// Increases (more cost) and decreases, told apart by hue and lightness alike.
const INCREASE: RGBColor = PALETTE[3];
const DECREASE: RGBColor = PALETTE[0];
const ROW_MIN: i32 = 20;
const ROW_MAX: i32 = 34;

impl BarChart {
    pub fn read(table: &Table) -> Result<Option<Self>, ChartError> {
        let labels = table.texts("label")?;
        let values = table.numbers("value")?;
        let details = table.texts_if_present("detail")?;
        let rows: Vec<BarRow> = values
            .iter()
            .enumerate()
            .filter_map(|(row, value)| {
                Some(BarRow {
                    label: labels[row].clone().unwrap_or_default(),
                    value: (*value)?,
                    detail: details.as_ref().and_then(|d| d[row].clone()),
                })
            })
            .collect();
        Ok(if rows.is_empty() {
            None
        } else {
            Some(Self { rows })
        })
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        spec: &ChartSpec,
    ) -> Result<(), ChartError> {
        let top = canvas::draw_frame(area, spec)?;
        let (width, height) = area.dim_in_pixel();
        let (width, height) = (width as i32, height as i32);
        let axis_height = 22;
        let footer = 18;
        // Reference lines are labelled above the bars.
        let reference_room = if spec.target.is_some() || !spec.thresholds.is_empty() {
            18
        } else {
            0
        };
        let top = top + reference_room;
        let available = height - PAD - axis_height - top;
        // Rows in the order the query sorted them; those that do not fit are counted below.
        let fitting = ((available - footer) / ROW_MIN).max(1) as usize;
        let shown = if self.rows.len() <= (available / ROW_MIN).max(1) as usize {
            self.rows.len()
        } else {
            fitting
        };
        let rows = &self.rows[..shown.min(self.rows.len())];
        let hidden = self.rows.len() - rows.len();
        let pitch = ((available - if hidden > 0 { footer } else { 0 }) / rows.len().max(1) as i32)
            .clamp(ROW_MIN, ROW_MAX);

        let label_room = (width * 3 / 10).max(60);
        let labels: Vec<String> = rows
            .iter()
            .map(|r| fit(&r.label, label_room, TEXT_SIZE, false))
            .collect();
        let label_width = labels
            .iter()
            .map(|l| text_width(l, TEXT_SIZE, false))
            .max()
            .unwrap_or(0);
        let left = PAD + label_width + 10;
        let right = width - PAD;

        let two_sided = rows.iter().any(|r| r.value < 0.0);
        let annotation = |row: &BarRow| {
            let value = super::format_value(row.value, spec.unit, &spec.currency);
            match &row.detail {
                Some(detail) => format!("{value} · {detail}"),
                None => value,
            }
        };
        let detail_room = (right - left) * 2 / 5;
        let notes: Vec<String> = rows
            .iter()
            .map(|r| fit(&annotation(r), detail_room, TEXT_SIZE - 1.0, false))
            .collect();
        // Every annotation reads to the right: a positive bar's after its end, a negative bar's
        // after the zero line. So the bars keep all the width but one column of text.
        let note_width = notes
            .iter()
            .map(|n| text_width(n, TEXT_SIZE - 1.0, false) + 8)
            .max()
            .unwrap_or(0);
        let (bars_left, bars_right) = (left, right - note_width);
        let references = super::axes::spec_references(spec, spec.target);
        let values = || {
            rows.iter()
                .map(|r| r.value)
                .chain(references.iter().map(|r| r.value))
        };
        let lo = values().fold(0.0, f64::min);
        let hi = values().fold(0.0, f64::max);
        // The bars span the data, not the round range around it: every bar carries its value, the
        // ticks inside are a guide. The finest round step whose labels keep apart.
        let tick_label =
            format_in_unit(-hi.abs().max(lo.abs()), spec.unit, &spec.currency, Some(0));
        let spacing = f64::from(text_width(&tick_label, TEXT_SIZE, false) + 20);
        let bars_width = f64::from((bars_right - bars_left).max(1));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (ticks, step) = (2..=12)
            .rev()
            .map(|count| nice_ticks(lo, hi, count))
            .find(|(_, step)| step / span * bars_width >= spacing)
            .unwrap_or_else(|| nice_ticks(lo, hi, 2));
        let ticks: Vec<f64> = ticks
            .into_iter()
            .filter(|t| *t >= lo - step * 1e-6 && *t <= hi + step * 1e-6)
            .collect();
        let px = |v: f64| {
            bars_left + ((v - lo) / span * f64::from(bars_right - bars_left)).round() as i32
        };
        let bars_top = top + 4;
        let bars_bottom = bars_top + pitch * rows.len() as i32;

        let decimals = decimals_for_step(step, spec.unit);
        let tick_style = text_style(TEXT_SIZE, false, MUTED, HPos::Center, VPos::Top);
        for tick in &ticks {
            let x = px(*tick);
            let color = if *tick == 0.0 { AXIS } else { GRID };
            area.draw(&PathElement::new(
                vec![(x, bars_top), (x, bars_bottom)],
                color.stroke_width(1),
            ))
            .map_err(canvas::render_error)?;
            let label = format_in_unit(*tick, spec.unit, &spec.currency, Some(decimals));
            let half = text_width(&label, TEXT_SIZE, false) / 2 + 1;
            draw_text(
                area,
                &label,
                (x.clamp(PAD + half, width - PAD / 2 - half), bars_bottom + 6),
                &tick_style,
            )?;
        }

        let label_style = text_style(TEXT_SIZE, false, INK, HPos::Right, VPos::Center);
        let zero = px(0.0);
        for (i, row) in rows.iter().enumerate() {
            let centre = bars_top + pitch * i as i32 + pitch / 2;
            let half = (pitch * 3 / 10).max(5);
            draw_text(area, &labels[i], (left - 10, centre), &label_style)?;
            let end = px(row.value);
            let color = if two_sided && row.value > 0.0 {
                INCREASE
            } else {
                DECREASE
            };
            if end != zero {
                area.draw(&Rectangle::new(
                    [
                        (zero.min(end), centre - half),
                        (zero.max(end), centre + half),
                    ],
                    color.filled(),
                ))
                .map_err(canvas::render_error)?;
            }
            let at = end.max(zero) + 6;
            draw_text(
                area,
                &notes[i],
                (at, centre),
                &text_style(TEXT_SIZE - 1.0, false, MUTED, HPos::Left, VPos::Center),
            )?;
        }
        for reference in &references {
            let x = px(reference.value);
            canvas::dashed(
                area,
                (x, bars_top - 4),
                (x, bars_bottom),
                reference.color,
                2,
            )?;
            let label = fit(&reference.label, (right - left) / 2, TEXT_SIZE - 1.0, false);
            let half = text_width(&label, TEXT_SIZE - 1.0, false) / 2 + 1;
            let style = text_style(
                TEXT_SIZE - 1.0,
                false,
                reference.color,
                HPos::Center,
                VPos::Center,
            );
            draw_text(
                area,
                &label,
                (x.clamp(PAD + half, width - PAD / 2 - half), bars_top - 14),
                &style,
            )?;
        }
        if hidden > 0 {
            let more = format!("… {hidden} more");
            draw_text(
                area,
                &more,
                (PAD, height - PAD - 4),
                &text_style(TEXT_SIZE - 1.0, false, MUTED, HPos::Left, VPos::Bottom),
            )?;
        }
        Ok(())
    }
}
