#include "einsum.h"

#include <algorithm>
#include <map>
#include <set>

namespace ionn {
namespace {

// An index: a letter's character code, or kBroadcast + k for the k-th axis
// of the broadcast ('...') axes, counted from the left of the widest.
constexpr int kEllipsis = -1, kBroadcast = 256;

std::string IndexName(int id) {
  return id >= kBroadcast ? "broadcast axis " + std::to_string(id - kBroadcast) : "'" + std::string(1, static_cast<char>(id)) + "'";
}

// A term's letters (character codes) and kEllipsis for "...".
Result<std::vector<int>> ParseTerm(const std::string& term, const std::string& what) {
  std::vector<int> out;
  bool ellipsis = false;
  for (size_t i = 0; i < term.size(); ++i) {
    const char c = term[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      out.push_back(c);
    } else if (c == '.' && term.compare(i, 3, "...") == 0 && !ellipsis) {
      ellipsis = true;
      out.push_back(kEllipsis);
      i += 2;
    } else {
      return Status::Invalid("equation: " + what + " has " +
                             (c == '.' ? std::string("a '.' that is not one '...'") : "a character that is not a letter") +
                             " at position " + std::to_string(i));
    }
  }
  return out;
}

std::string Strip(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != ' ' && c != '\t') out += c;
  }
  return out;
}

bool IsIdentity(const Shape& perm) {
  for (size_t i = 0; i < perm.size(); ++i) {
    if (perm[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// Positions in `from` of each of `ids`.
Shape Positions(const std::vector<int>& from, const std::vector<int>& ids) {
  Shape p;
  for (int id : ids) p.push_back(std::find(from.begin(), from.end(), id) - from.begin());
  return p;
}

bool Has(const std::vector<int>& v, int id) { return std::find(v.begin(), v.end(), id) != v.end(); }

// One operand's steps up to the product: its own indices summed, then
// transposed to `order`, then reshaped to `groups`' sizes (each group one
// axis, the product of its indices' sizes; a batch index is its own group).
EinsumOperandSteps OperandSteps(const std::vector<int>& ids, const Shape& shape, const std::vector<int>& summed,
                                const std::vector<std::vector<int>>& groups) {
  EinsumOperandSteps s;
  std::vector<int> kept;
  Shape kept_shape;
  for (size_t d = 0; d < ids.size(); ++d) {
    if (Has(summed, ids[d])) {
      s.reduce_axes.push_back(static_cast<int64_t>(d));
    } else {
      kept.push_back(ids[d]);
      kept_shape.push_back(shape[d]);
    }
  }
  std::vector<int> order;
  for (const auto& g : groups) order.insert(order.end(), g.begin(), g.end());
  const Shape perm = Positions(kept, order);
  if (!IsIdentity(perm)) s.perm = perm;
  Shape transposed, grouped;
  for (int64_t p : perm) transposed.push_back(kept_shape[p]);
  size_t at = 0;
  for (const auto& g : groups) {
    int64_t n = 1;
    for (size_t i = 0; i < g.size(); ++i) n *= transposed[at++];
    grouped.push_back(n);
  }
  if (grouped != transposed) s.reshape = grouped;
  return s;
}

}  // namespace

Result<EinsumPlan> PlanEinsum(const std::string& equation, const std::vector<Shape>& shapes,
                              const std::vector<bool>& constant) {
  const std::string eq = Strip(equation);
  if (eq.empty()) return Status::Invalid("attribute 'equation' is missing or empty");
  const size_t arrow = eq.find("->");
  const bool explicit_output = arrow != std::string::npos;
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t from = 0;;) {
    const size_t comma = lhs.find(',', from);
    terms.push_back(lhs.substr(from, comma == std::string::npos ? std::string::npos : comma - from));
    if (comma == std::string::npos) break;
    from = comma + 1;
  }
  if (terms.size() != shapes.size()) {
    return Status::Invalid("equation has " + std::to_string(terms.size()) + " operand terms for " +
                           std::to_string(shapes.size()) + " inputs");
  }
  if (shapes.size() > 2) {
    return Status::Unsupported("Einsum of " + std::to_string(shapes.size()) + " operands (only of 1 or 2)");
  }
  if (shapes.size() == 2 && constant[0] && constant[1]) return Status::Unsupported("Einsum of two constants");
  if (shapes.size() == 1 && constant[0]) return Status::Unsupported("Einsum of a constant");

  // Each operand's indices, "..." expanded into broadcast axes aligned
  // from the right, as numpy broadcasts.
  std::vector<std::vector<int>> parsed;
  std::vector<int> ellipsis_rank;
  int broadcast_rank = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    IONN_ASSIGN_OR_RETURN(std::vector<int> t, ParseTerm(terms[i], "operand " + std::to_string(i)));
    const bool has_ellipsis = Has(t, kEllipsis);
    const int letters = static_cast<int>(t.size()) - (has_ellipsis ? 1 : 0);
    const int rank = static_cast<int>(shapes[i].size());
    if (letters > rank || (!has_ellipsis && letters != rank)) {
      return Status::Invalid("equation: operand " + std::to_string(i) + "'s term names " + std::to_string(letters) +
                             " axes, its input has shape " + ShapeToString(shapes[i]));
    }
    ellipsis_rank.push_back(rank - letters);
    broadcast_rank = std::max(broadcast_rank, rank - letters);
    parsed.push_back(std::move(t));
  }
  std::vector<std::vector<int>> ids(shapes.size());
  std::map<int, int64_t> size;
  std::map<int, int> uses;  // letters: in how many operand axes
  for (size_t i = 0; i < parsed.size(); ++i) {
    for (int token : parsed[i]) {
      if (token != kEllipsis) {
        ids[i].push_back(token);
        continue;
      }
      for (int k = 0; k < ellipsis_rank[i]; ++k) ids[i].push_back(kBroadcast + broadcast_rank - ellipsis_rank[i] + k);
    }
    for (size_t d = 0; d < ids[i].size(); ++d) {
      const int id = ids[i][d];
      if (std::count(ids[i].begin(), ids[i].end(), id) > 1) {
        return Status::Unsupported("index " + IndexName(id) + " appears twice in operand " + std::to_string(i) +
                                   " (a diagonal)");
      }
      const int64_t n = shapes[i][d];
      auto it = size.find(id);
      if (it == size.end()) {
        size[id] = n;
      } else if (it->second != n) {
        if (id < kBroadcast || (it->second != 1 && n != 1)) {
          return Status::Invalid("index " + IndexName(id) + " has size " + std::to_string(it->second) +
                                 " in one operand and " + std::to_string(n) + " in another");
        }
        it->second = std::max(it->second, n);
      }
      if (id < kBroadcast) ++uses[id];
    }
  }

  std::vector<int> out;
  if (explicit_output) {
    IONN_ASSIGN_OR_RETURN(std::vector<int> t, ParseTerm(eq.substr(arrow + 2), "output"));
    const bool has_ellipsis = Has(t, kEllipsis);
    if (broadcast_rank > 0 && !has_ellipsis) {
      return Status::Unsupported("broadcast axes ('...') the output leaves out (summed)");
    }
    for (int token : t) {
      if (token == kEllipsis) {
        for (int k = 0; k < broadcast_rank; ++k) out.push_back(kBroadcast + k);
        continue;
      }
      if (!size.count(token)) return Status::Invalid("output index " + IndexName(token) + " is in no operand");
      if (Has(out, token)) return Status::Invalid("output index " + IndexName(token) + " appears twice");
      out.push_back(token);
    }
  } else {  // numpy's implicit output: the broadcast axes, then each letter used once, in character order
    for (int k = 0; k < broadcast_rank; ++k) out.push_back(kBroadcast + k);
    for (const auto& [id, n] : uses) {
      if (n == 1) out.push_back(id);
    }
  }
  EinsumPlan plan;
  for (int id : out) plan.output.push_back(size.at(id));
  if (plan.output.size() > 8) return Status::Invalid("the output has more than 8 axes");

  if (shapes.size() == 1) {
    std::vector<int> summed;
    for (int id : ids[0]) {
      if (!Has(out, id)) summed.push_back(id);
    }
    std::vector<std::vector<int>> groups;
    for (int id : out) groups.push_back({id});
    plan.operand[0] = OperandSteps(ids[0], shapes[0], summed, groups);
    return plan;
  }

  // Two operands: L times R, a constant on the right (MatMul's weight).
  plan.left = constant[0] ? 1 : 0;
  const std::vector<int>& L = ids[plan.left];
  const std::vector<int>& R = ids[1 - plan.left];
  // batch: indices the output keeps from both operands, and broadcast axes
  // only one has (its leftmost: MatMul broadcasts them, first).
  std::vector<int> batch, free_l, free_r, contracted, summed_l, summed_r;
  for (int id : out) {
    if (id >= kBroadcast && !(Has(L, id) && Has(R, id))) batch.push_back(id);
  }
  for (int id : out) {
    if (Has(L, id) && Has(R, id)) batch.push_back(id);
    else if (id >= kBroadcast) continue;
    else if (Has(L, id)) free_l.push_back(id);
    else free_r.push_back(id);
  }
  for (int id : L) {
    if (Has(out, id)) continue;
    (Has(R, id) ? contracted : summed_l).push_back(id);
  }
  for (int id : R) {
    if (!Has(out, id) && !Has(L, id)) summed_r.push_back(id);
  }
  const Shape& shape_l = shapes[plan.left];
  const Shape& shape_r = shapes[1 - plan.left];
  if (constant[1 - plan.left] && !summed_r.empty()) {
    return Status::Unsupported("index " + IndexName(summed_r[0]) + " summed within the constant operand");
  }
  // The left operand's rows: its free indices as one axis M; or, where the
  // right operand has no batch axes (a weight-like [K, N]), each its own
  // axis, which MatMul broadcasts the right operand over (no reshape).
  const bool right_batched = std::any_of(batch.begin(), batch.end(), [&](int id) { return Has(R, id); });
  std::vector<std::vector<int>> rows;
  if (!right_batched && !free_l.empty()) {
    for (int id : free_l) rows.push_back({id});
  } else {
    rows.push_back(free_l);
  }
  std::vector<std::vector<int>> groups_l, groups_r;
  for (int id : batch) {
    if (Has(L, id)) groups_l.push_back({id});
    if (Has(R, id)) groups_r.push_back({id});
  }
  groups_l.insert(groups_l.end(), rows.begin(), rows.end());
  groups_l.push_back(contracted);
  groups_r.push_back(contracted);
  groups_r.push_back(free_r);
  plan.operand[plan.left] = OperandSteps(L, shape_l, summed_l, groups_l);
  plan.operand[1 - plan.left] = OperandSteps(R, shape_r, summed_r, groups_r);

  // The product is [batch..., rows..., N]; the output's indices in the
  // order batch, free left, free right.
  Shape product, ungrouped;
  std::vector<int> order;
  auto keep = [&](int id) {
    ungrouped.push_back(size.at(id));
    order.push_back(id);
    return size.at(id);
  };
  for (int id : batch) product.push_back(keep(id));
  for (const auto& row : rows) {
    int64_t m = 1;
    for (int id : row) m *= keep(id);
    product.push_back(m);
  }
  int64_t n = 1;
  for (int id : free_r) n *= keep(id);
  product.push_back(n);
  if (ungrouped != product) plan.product_reshape = ungrouped;
  const Shape perm = Positions(order, out);
  if (!IsIdentity(perm)) plan.output_perm = perm;
  return plan;
}

}  // namespace ionn
