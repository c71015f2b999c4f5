//! `doracost sql` without a query: a prompt with line editing and history (rustyline) on a
//! terminal, or the statements of standard input otherwise (`echo "SELECT 1;" | doracost sql`).
//! Statements end at a `;` ([`query::script::StatementBuffer`]); psql's `\timing`, `\q`, `\dt`
//! and `\dv` are understood at the start of a statement.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use query::Engine;
use query::output::{Format, render};
use query::script::StatementBuffer;
use rustyline::error::ReadlineError;

const HELP: &str = "Statements end with `;` and may span lines.
  \\timing [on|off]  print each statement's time (toggles without an argument)
  \\dt               the tables (the lake's and config's)
  \\dv               the views
  \\q                quit (also Ctrl-D)
  \\?                this help";

/// Where lines come from.
enum Input {
    /// A terminal: rustyline, its history kept in `history` when there is a place for it.
    Terminal {
        editor: Box<rustyline::DefaultEditor>,
        history: Option<PathBuf>,
    },
    /// Anything else: lines as they come, no prompt.
    Piped(std::io::Lines<std::io::StdinLock<'static>>),
}

impl Input {
    /// The next line; `None` at the end of input (Ctrl-D on a terminal).
    fn line(&mut self, prompt: &str, buffer: &mut StatementBuffer) -> Result<Option<String>> {
        match self {
            Input::Piped(lines) => Ok(lines.next().transpose()?),
            Input::Terminal { editor, .. } => {
                // rustyline blocks this thread until a line is typed: tell the runtime so.
                match tokio::task::block_in_place(|| editor.readline(prompt)) {
                    Ok(line) => Ok(Some(line)),
                    // Ctrl-C drops the statement being typed, as in psql.
                    Err(ReadlineError::Interrupted) => {
                        buffer.take_rest();
                        Ok(Some(String::new()))
                    }
                    Err(ReadlineError::Eof) => Ok(None),
                    Err(e) => Err(e).context("reading the terminal"),
                }
            }
        }
    }

    /// Remembers a statement or command (a terminal's history only; whole statements, not lines).
    fn remember(&mut self, entry: &str) {
        if let Input::Terminal { editor, .. } = self {
            let _ = editor.add_history_entry(entry);
        }
    }

    fn save_history(&mut self) {
        if let Input::Terminal {
            editor,
            history: Some(path),
        } = self
        {
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if let Err(e) = editor.save_history(path) {
                eprintln!("warning: history not saved to {}: {e}", path.display());
            }
        }
    }
}

/// The history file: `DORACOST_HISTORY`, else `doracost/sql_history` in the user's data folder
/// (`~/.local/share` on Linux), else none.
fn history_path() -> Option<PathBuf> {
    match std::env::var_os("DORACOST_HISTORY") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => dirs::data_dir().map(|d| d.join("doracost").join("sql_history")),
    }
}

/// Runs the prompt until `\q` or the end of input. Errors of a statement are printed and the
/// next one runs; from standard input that is not a terminal, the exit then says one failed.
pub async fn run(engine: &Engine, format: Format, view_names: &[String]) -> Result<()> {
    let stdin = std::io::stdin();
    let interactive = std::io::IsTerminal::is_terminal(&stdin);
    let mut input = if interactive {
        let mut editor = rustyline::DefaultEditor::new().context("opening the terminal")?;
        let history = history_path();
        if let Some(path) = &history {
            // A first session has no file yet.
            let _ = editor.load_history(path);
        }
        eprintln!(
            "doracost SQL over the lake; statements end with `;`, \\? for help, \\q to quit."
        );
        Input::Terminal {
            editor: Box::new(editor),
            history,
        }
    } else {
        Input::Piped(stdin.lock().lines())
    };
    let mut buffer = StatementBuffer::default();
    let mut timing = false;
    let mut failed = 0usize;
    loop {
        let prompt = if buffer.is_empty() {
            "doracost> "
        } else {
            "      -> "
        };
        let Some(line) = input.line(prompt, &mut buffer)? else {
            break;
        };
        if buffer.is_empty() && line.trim_start().starts_with('\\') {
            let command = line.trim();
            input.remember(command);
            let mut words = command.split_whitespace();
            match (words.next().unwrap_or_default(), words.next()) {
                ("\\q", _) => break,
                ("\\timing", setting) => {
                    timing = match setting {
                        None => !timing,
                        Some("on") => true,
                        Some("off") => false,
                        Some(other) => {
                            eprintln!("\\timing: expected on or off, found {other:?}");
                            continue;
                        }
                    };
                    eprintln!("Timing is {}.", if timing { "on" } else { "off" });
                }
                ("\\dt", _) | ("\\dv", _) => {
                    let sql = catalog_sql(command.starts_with("\\dv"), view_names);
                    if let Err(e) = run_one(engine, &sql, format, timing).await {
                        eprintln!("error: {e:#}");
                        failed += 1;
                    }
                }
                ("\\?", _) | ("\\h", _) => eprintln!("{HELP}"),
                (other, _) => eprintln!("unknown command {other}; \\? lists them"),
            }
            continue;
        }
        for statement in buffer.push_line(&line) {
            input.remember(&format!("{statement};"));
            if let Err(e) = run_one(engine, &statement, format, timing).await {
                eprintln!("error: {e:#}");
                failed += 1;
            }
        }
    }
    input.save_history();
    // A last statement without its `;` at the end of piped input still runs (as it always has).
    let rest = buffer.take_rest();
    if !rest.is_empty()
        && let Err(e) = run_one(engine, &rest, format, timing).await
    {
        eprintln!("error: {e:#}");
        failed += 1;
    }
    if failed > 0 && !interactive {
        bail!("{failed} statement(s) failed (their errors are above)");
    }
    Ok(())
}

/// One statement's answer on standard output; its time on standard error with `\timing` on.
async fn run_one(engine: &Engine, sql: &str, format: Format, timing: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let result = async {
        let (schema, batches) = engine.query_with_schema(sql).await?;
        let bytes = render(&schema, &batches, format)?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&bytes)?;
        stdout.flush()?;
        anyhow::Ok(())
    }
    .await;
    if timing {
        eprintln!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
    }
    result
}

/// `\dv` (the views of `dora.sql` and `cost.sql`) or `\dt` (every other table of the session:
/// the lake's, the config's, `derived_tables`), as a query over the information schema.
fn catalog_sql(views: bool, view_names: &[String]) -> String {
    let list = view_names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    let (column, test) = if views {
        ("view", "IN")
    } else {
        ("table", "NOT IN")
    };
    format!(
        "SELECT table_name AS \"{column}\" FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name {test} ({list}) ORDER BY table_name"
    )
}
