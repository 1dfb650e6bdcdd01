// CSV as RFC 4180 has it, the one reader and writer of the CSV files ionn
// reads (profiles, regressions); writers of names use CsvField: fields separated by commas, a field in
// double quotes may hold commas, quotes (doubled) and line breaks; lines
// end in LF or CRLF. Unquoted fields are trimmed of spaces.
#pragma once

#include <string>
#include <vector>

#include "ionn/status.h"

namespace ionn {

struct CsvRow {
  int line = 0;  // where the row starts in the text, from 1
  std::vector<std::string> cells;
};

// Every non-empty row; an unterminated quote or text after a closing quote
// is an error naming the line.
Result<std::vector<CsvRow>> ParseCsv(const std::string& text);

// A field as written: quoted when it holds a comma, a quote, a line break
// or a leading or trailing space.
std::string CsvField(const std::string& field);
// Fields joined by commas, with a final "\n".
std::string CsvLine(const std::vector<std::string>& fields);

}  // namespace ionn
