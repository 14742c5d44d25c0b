//! `threesigma patterns`: the template of each line of standard input.
//!
//! Two passes over the lines: the first teaches the miner every message, the second
//! prints each message's template, so the first lines get the templates the last ones
//! taught (a template's slot becomes a variable only once enough values were seen). The
//! input is held in memory for the second pass.

use std::collections::HashMap;
use std::io::{self, BufRead, BufWriter, Write};

use domain::patterns::Miner;

/// Reads messages, one per line (invalid UTF-8 replaced, a trailing `\r` dropped), and
/// writes one template per line in the same order, or with `summary` each template once
/// with its count, most frequent first.
pub fn run(input: impl BufRead, output: impl Write, summary: bool) -> io::Result<()> {
    let lines = read_lines(input)?;
    let mut miner = Miner::default();
    for line in &lines {
        miner.add(line);
    }
    let mut output = BufWriter::new(output);
    if summary {
        let mut counts: HashMap<String, (u64, usize)> = HashMap::new();
        for (i, line) in lines.iter().enumerate() {
            counts.entry(miner.template(line)).or_insert((0, i)).0 += 1;
        }
        let mut counts: Vec<(String, (u64, usize))> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
        for (template, (count, _)) in counts {
            writeln!(output, "{count}\t{template}")?;
        }
    } else {
        for line in &lines {
            writeln!(output, "{}", miner.template(line))?;
        }
    }
    output.flush()
}

fn read_lines(mut input: impl BufRead) -> io::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut buffer = Vec::new();
    while input.read_until(b'\n', &mut buffer)? > 0 {
        let line = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        lines.push(String::from_utf8_lossy(line).into_owned());
        buffer.clear();
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(input: &[u8], summary: bool) -> String {
        let mut out = Vec::new();
        run(input, &mut out, summary).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn one_template_per_line_in_order_or_a_summary() {
        let input = b"took 5 ms\r\nfailed to open /etc/x\ntook 12 ms\n\xff bad";
        assert_eq!(
            output(input, false),
            "took <*> ms\nfailed to open <*>\ntook <*> ms\n\u{fffd} bad\n"
        );
        assert_eq!(
            output(input, true),
            "2\ttook <*> ms\n1\tfailed to open <*>\n1\t\u{fffd} bad\n"
        );
        assert_eq!(output(b"", false), "");
    }
}
