#include "ionn/csv.h"

namespace ionn {
namespace {

std::string Trimmed(const std::string& s) {
  const size_t a = s.find_first_not_of(' ');
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(' ') - a + 1);
}

}  // namespace

Result<std::vector<CsvRow>> ParseCsv(const std::string& text) {
  std::vector<CsvRow> rows;
  CsvRow row;
  std::string cell;
  bool quoted = false;        // the cell began with a quote
  bool in_quotes = false;     // inside it now
  bool row_has_text = false;  // anything but an empty line
  int line = 1;
  row.line = 1;
  auto end_cell = [&] {
    row.cells.push_back(quoted ? cell : Trimmed(cell));
    cell.clear();
    quoted = false;
  };
  auto end_row = [&] {
    end_cell();
    if (row_has_text) rows.push_back(std::move(row));
    row = CsvRow{};
    row_has_text = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
        // Only spaces, then a comma or the line's end, may follow.
        size_t j = i + 1;
        while (j < text.size() && text[j] == ' ') ++j;
        if (j < text.size() && text[j] != ',' && text[j] != '\n' && text[j] != '\r') {
          return Status::Invalid("line " + std::to_string(line) + ": text after a closing quote");
        }
        i = j - 1;
      } else {
        if (c == '\n') ++line;
        cell += c;
      }
      continue;
    }
    if (c == '"' && Trimmed(cell).empty()) {
      quoted = in_quotes = row_has_text = true;
      cell.clear();
    } else if (c == ',') {
      row_has_text = true;
      end_cell();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      continue;  // CRLF: the LF ends the row
    } else if (c == '\n') {
      end_row();
      row.line = ++line;
    } else {
      if (c != ' ' && c != '\r') row_has_text = true;
      cell += c;
    }
  }
  if (in_quotes) return Status::Invalid("line " + std::to_string(row.line) + ": a quoted field is not closed");
  end_row();
  return rows;
}

std::string CsvField(const std::string& field) {
  const bool quote = field.find_first_of(",\"\r\n") != std::string::npos ||
                     (!field.empty() && (field.front() == ' ' || field.back() == ' '));
  if (!quote) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string CsvLine(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + CsvField(fields[i]);
  return out + "\n";
}

}  // namespace ionn
