//! The table of contents of a pg_dump archive, as `pg_restore --list` prints it.

/// The table of contents of an archive (`pg_restore --list`) and the schema it holds.
pub(super) struct Toc {
    lines: Vec<String>,
    pub(super) schema: String,
}

impl Toc {
    pub(super) fn parse(text: &str) -> Option<Toc> {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let entries = lines
            .iter()
            .filter(|l| !l.trim_start().starts_with(';'))
            .filter_map(|l| Self::entry(l));
        let mut schema = None;
        let mut from_table = None;
        for entry in entries {
            if let Some(rest) = entry.strip_prefix("SCHEMA - ") {
                schema = rest.split(' ').next().map(str::to_string);
            } else if let Some(rest) = entry.strip_prefix("TABLE ") {
                if !rest.starts_with("DATA ") && from_table.is_none() {
                    from_table = rest.split(' ').next().map(str::to_string);
                }
            }
        }
        let schema = schema.or(from_table)?;
        Some(Toc { lines, schema })
    }

    /// The part of a line after `ID; CATALOG OID `: `DESC SCHEMA NAME OWNER`.
    fn entry(line: &str) -> Option<&str> {
        let (_, rest) = line.split_once("; ")?;
        let mut parts = rest.splitn(3, ' ');
        parts.next()?;
        parts.next()?;
        parts.next()
    }

    /// The list without the schema itself (and its comment): for a schema that already exists.
    pub(super) fn without_schema(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let skip = Self::entry(line)
                .is_some_and(|e| e.starts_with("SCHEMA - ") || e.starts_with("COMMENT - SCHEMA "));
            if !skip {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = ";
; Archive created at 2026-01-01 00:00:00 UTC
;     dbname: test
;
6; 2615 67472 SCHEMA - keel_test_x postgres
215; 1259 67473 TABLE keel_test_x jobs postgres
3342; 0 67473 TABLE DATA keel_test_x jobs postgres
3198; 2606 67479 CONSTRAINT keel_test_x jobs jobs_pkey postgres
";

    #[test]
    fn the_schema_is_read_and_can_be_left_out() {
        let toc = Toc::parse(LIST).expect("a schema");
        assert_eq!(toc.schema, "keel_test_x");
        let list = toc.without_schema();
        assert!(!list.contains("SCHEMA - keel_test_x"), "{list}");
        assert!(list.contains("TABLE DATA keel_test_x jobs"), "{list}");
        assert!(list.contains("; Archive created"), "{list}");
    }

    #[test]
    fn public_is_found_from_its_tables_and_its_comment_is_left_out() {
        let list = "4; 2615 2200 SCHEMA - public pg_database_owner\n\
                    3349; 0 0 COMMENT - SCHEMA public pg_database_owner\n\
                    216; 1259 67500 TABLE public users postgres\n";
        let toc = Toc::parse(list).expect("a schema");
        assert_eq!(toc.schema, "public");
        assert_eq!(
            toc.without_schema(),
            "216; 1259 67500 TABLE public users postgres\n"
        );
        let tables_only =
            Toc::parse("216; 1259 67500 TABLE app users postgres\n").expect("a schema");
        assert_eq!(tables_only.schema, "app");
        assert!(Toc::parse(";\n; nothing\n").is_none());
    }
}
