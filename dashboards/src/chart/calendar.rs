//! The deployments calendar: one square per day, weeks as columns and weekdays as rows, shaded by
//! the day's value.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{
    self, Area, MUTED, PAD, PALETTE, TEXT_SIZE, draw_text, text_style, text_width,
};
use super::data::Table;
use super::format::days_to_datetime;
use super::{ChartError, ChartSpec, format_value};

pub(crate) struct CalendarChart {
    /// (days since 1970-01-01, value), ascending by day.
    days: Vec<(i64, f64)>,
}

/// A day without a row, or with nothing, reads as empty rather than as the lowest shade.
const EMPTY: RGBColor = RGBColor(0xEB, 0xED, 0xF0);
/// Shares of the range's maximum that each shade covers.
const SHADES: [f64; 4] = [0.25, 0.5, 0.75, 1.0];
const MAX_CELL: i32 = 18;
const MIN_CELL: i32 = 6;
const GAP: i32 = 2;

impl CalendarChart {
    pub fn read(table: &Table) -> Result<Option<Self>, ChartError> {
        let days = table.dates("day")?;
        let values = table.numbers("value")?;
        let mut by_day: Vec<(i64, f64)> = days
            .iter()
            .zip(&values)
            .filter_map(|(day, value)| Some((day.as_ref().copied()? as i64, (*value)?)))
            .collect();
        if by_day.is_empty() {
            return Ok(None);
        }
        by_day.sort_by_key(|(day, _)| *day);
        // Two rows for one day (e.g. per service) add up, as the day's square shows the day.
        by_day.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                earlier.1 += later.1;
            }
            same
        });
        Ok(Some(Self { days: by_day }))
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        spec: &ChartSpec,
    ) -> Result<(), ChartError> {
        let top = canvas::draw_frame(area, spec)?;
        let (width, height) = area.dim_in_pixel();
        let (width, height) = (width as i32, height as i32);
        let (Some(&(first, _)), Some(&(last, _))) = (self.days.first(), self.days.last()) else {
            return canvas::draw_no_data(area, spec);
        };
        let weekday_width = text_width("Wed", TEXT_SIZE - 2.0, false) + 8;
        let (month_row, legend_row) = (18, 26);
        let grid_left = PAD + weekday_width;
        let room_x = width - PAD - grid_left;
        let room_y = height - PAD - legend_row - top - month_row;
        let monday_of = |day: i64| day - weekday(day);
        let all_weeks = (monday_of(last) - monday_of(first)) / 7 + 1;
        let pitch_y = room_y / 7;
        // Too many weeks for the width: keep the most recent that fit.
        let weeks = all_weeks.min(i64::from(room_x / MIN_CELL)).max(1);
        let pitch = (room_x / weeks as i32).min(pitch_y).min(MAX_CELL + GAP);
        if pitch < MIN_CELL / 2 {
            return Err(ChartError::Render(format!(
                "{width}×{height} pixels leave no room for the calendar"
            )));
        }
        let cell = (pitch - GAP).max(2);
        let start = monday_of(last) - (weeks - 1) * 7;
        let grid_top = top + month_row;
        let max = self.days.iter().map(|(_, v)| *v).fold(0.0, f64::max);

        let weekday_style = text_style(TEXT_SIZE - 2.0, false, MUTED, HPos::Left, VPos::Center);
        for (row, name) in [(0, "Mon"), (2, "Wed"), (4, "Fri")] {
            draw_text(
                area,
                name,
                (PAD, grid_top + row * pitch + cell / 2),
                &weekday_style,
            )?;
        }
        let mut values = self.days.iter().peekable();
        let mut month_label_end = i32::MIN;
        let month_style = text_style(TEXT_SIZE - 2.0, false, MUTED, HPos::Left, VPos::Center);
        for week in 0..weeks {
            let x = grid_left + week as i32 * pitch;
            let monday = start + week * 7;
            // A month is named over the week its first day falls in (and over the first column).
            let first_of_month = (0..7)
                .map(|d| monday + d)
                .find(|d| day_of_month(*d) == Some(1));
            if let Some(label_day) = first_of_month.or(if week == 0 { Some(monday) } else { None })
            {
                let label = month_name(label_day);
                if x > month_label_end
                    && x + text_width(&label, TEXT_SIZE - 2.0, false) <= width - PAD
                {
                    draw_text(area, &label, (x, top + month_row / 2), &month_style)?;
                    month_label_end = x + text_width(&label, TEXT_SIZE - 2.0, false) + 6;
                }
            }
            for row in 0..7 {
                let day = monday + row;
                if day < first.max(start) || day > last {
                    continue;
                }
                while values.next_if(|(d, _)| *d < day).is_some() {}
                let value = values.next_if(|(d, _)| *d == day).map(|(_, v)| *v);
                let y = grid_top + row as i32 * pitch;
                area.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    shade(value, max).filled(),
                ))
                .map_err(canvas::render_error)?;
            }
        }

        let legend_y = grid_top + 7 * pitch + legend_row / 2 + 2;
        let legend_style = text_style(TEXT_SIZE - 2.0, false, MUTED, HPos::Left, VPos::Center);
        let mut x = grid_left;
        draw_text(area, "Less", (x, legend_y), &legend_style)?;
        x += text_width("Less", TEXT_SIZE - 2.0, false) + 6;
        let swatch = cell.clamp(8, 12);
        for color in std::iter::once(EMPTY).chain(SHADES.iter().map(|s| shade(Some(s * max), max)))
        {
            area.draw(&Rectangle::new(
                [
                    (x, legend_y - swatch / 2),
                    (x + swatch, legend_y + swatch / 2),
                ],
                color.filled(),
            ))
            .map_err(canvas::render_error)?;
            x += swatch + 3;
        }
        let more = format!(
            "More (max {})",
            format_value(max, spec.unit, &spec.currency)
        );
        draw_text(area, &more, (x + 3, legend_y), &legend_style)?;
        Ok(())
    }
}

/// Monday 0 … Sunday 6; 1970-01-01 was a Thursday.
fn weekday(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

fn day_of_month(day: i64) -> Option<u32> {
    days_to_datetime(day as f64).map(|at| chrono::Datelike::day(&at))
}

fn month_name(day: i64) -> String {
    days_to_datetime(day as f64)
        .map(|at| at.format("%b").to_string())
        .unwrap_or_default()
}

/// Blue of increasing depth by the value's share of the maximum; nothing or zero is grey.
fn shade(value: Option<f64>, max: f64) -> RGBColor {
    let Some(value) = value.filter(|v| *v > 0.0 && max > 0.0) else {
        return EMPTY;
    };
    let share = value / max;
    let step = SHADES
        .iter()
        .position(|s| share <= *s + 1e-9)
        .unwrap_or(SHADES.len() - 1);
    let depth = [0.3, 0.55, 0.8, 1.0][step];
    let RGBColor(r, g, b) = PALETTE[0];
    let mix = |channel: u8| (255.0 - (255.0 - f64::from(channel)) * depth).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}
