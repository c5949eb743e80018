// hnswlib behind a narrow, exception-safe surface. Every function the bridge
// declares `-> Result` may throw; cxx turns the exception into an Err. The
// functions declared without Result (the counters) cannot throw.

#include "shim.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <unordered_map>
#include <queue>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hnswlib/hnswlib.h"
#include "vecsearch-hnswlib/src/ffi.rs.h"

static_assert(sizeof(hnswlib::labeltype) == sizeof(uint64_t),
              "labels must be 64-bit: ids are u64");

namespace vecsearch {
namespace {

// Weighted Jaccard distance 1 - Σmin/Σmax over non-negative vectors (the
// Rust side rejects negative components); two all-zero vectors are at 0.
float jaccard_distance(const void *a, const void *b, const void *param) {
    const float *x = static_cast<const float *>(a);
    const float *y = static_cast<const float *>(b);
    size_t dim = *static_cast<const size_t *>(param);
    float num = 0.0f, den = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        num += std::min(x[i], y[i]);
        den += std::max(x[i], y[i]);
    }
    return den > 0.0f ? 1.0f - num / den : 0.0f;
}

class JaccardSpace : public hnswlib::SpaceInterface<float> {
  public:
    explicit JaccardSpace(size_t dim) : dim_(dim) {}
    size_t get_data_size() override { return dim_ * sizeof(float); }
    hnswlib::DISTFUNC<float> get_dist_func() override { return jaccard_distance; }
    // hnswlib's getDataByLabel reads the dimension through this pointer.
    void *get_dist_func_param() override { return &dim_; }

  private:
    size_t dim_;
};

std::unique_ptr<hnswlib::SpaceInterface<float>> make_space(Space space, size_t dim) {
    switch (space) {
    case Space::L2:
        return std::make_unique<hnswlib::L2Space>(dim);
    case Space::InnerProduct:
        return std::make_unique<hnswlib::InnerProductSpace>(dim);
    case Space::Jaccard:
        return std::make_unique<JaccardSpace>(dim);
    default:
        throw std::invalid_argument("unknown space code " +
                                std::to_string(static_cast<unsigned>(space)));
    }
}

// Admits the labels of a compiled filter, probed in C++ with no call into
// Rust: a bit array over labels from `base` (bit i is label base + i), or,
// when `words` is empty, an ascending list searched by bisection.
class LabelFilter : public hnswlib::BaseFilterFunctor {
  public:
    LabelFilter(uint64_t base, rust::Slice<const uint64_t> words,
                rust::Slice<const uint64_t> sorted)
        : base_(base), words_(words), sorted_(sorted) {}
    bool operator()(hnswlib::labeltype id) override {
        if (words_.size() > 0) {
            if (id < base_) return false;
            uint64_t bit = id - base_;
            uint64_t word = bit / 64;
            return word < words_.size() && ((words_[word] >> (bit % 64)) & 1) != 0;
        }
        return std::binary_search(sorted_.begin(), sorted_.end(), static_cast<uint64_t>(id));
    }

  private:
    uint64_t base_;
    rust::Slice<const uint64_t> words_;
    rust::Slice<const uint64_t> sorted_;
};

// hnswlib's own rule for a bottom-level walk of width `ef` (stop when the
// nearest candidate is farther than the worst of `ef` results; keep a
// neighbour while fewer than `ef` results or nearer than the worst), and a
// budget: once the walk has scored more than `budget` rows it stops and
// says so. A filter that avoids the query's neighbourhood otherwise walks
// the whole graph (12 QPS at 1,000,000 points, where scanning the 27,000
// matches runs at 223).
class BudgetStop : public hnswlib::BaseSearchStopCondition<float> {
  public:
    BudgetStop(size_t ef, size_t budget) : ef_(ef), budget_(budget) {}
    void add_point_to_result(hnswlib::labeltype, const void *, float) override { ++size_; }
    void remove_point_from_result(hnswlib::labeltype, const void *, float) override { --size_; }
    bool should_stop_search(float candidate, float lower_bound) override {
        return spent_ || (candidate > lower_bound && size_ >= ef_);
    }
    bool should_consider_candidate(float dist, float lower_bound) override {
        // Called once for every row the walk scores.
        if (++scored_ > budget_) spent_ = true;
        return size_ < ef_ || lower_bound > dist;
    }
    bool should_remove_extra() override { return size_ > ef_; }
    void filter_results(std::vector<std::pair<float, hnswlib::labeltype>> &) override {}
    bool spent() const { return spent_; }

  private:
    size_t ef_;
    size_t budget_;
    size_t size_ = 0;
    size_t scored_ = 0;
    bool spent_ = false;
};

// A max-heap of the k best (distance, label) pairs so far.
using Best = std::priority_queue<std::pair<float, hnswlib::labeltype>>;

// Offers `hit` to `best`: a candidate tied with the worst kept one replaces
// it when its label is lower, so ties at the k-th distance go to the lowest
// ids, as the contract says (the front door's sort cannot bring back an id
// a scan dropped).
void keep(Best &best, size_t k, std::pair<float, hnswlib::labeltype> hit) {
    if (best.size() < k) {
        best.push(hit);
    } else if (hit < best.top()) {
        best.pop();
        best.push(hit);
    }
}

rust::Vec<Hit> to_hits(Best &&q) {
    rust::Vec<Hit> out;
    out.reserve(q.size());
    while (!q.empty()) {
        out.push_back(Hit{q.top().second, q.top().first});
        q.pop();
    }
    return out;
}

}  // namespace

Hnsw::Hnsw(std::unique_ptr<hnswlib::SpaceInterface<float>> space,
           std::unique_ptr<hnswlib::HierarchicalNSW<float>> index)
    : space_(std::move(space)), index_(std::move(index)) {}

Hnsw::~Hnsw() = default;

std::unique_ptr<Hnsw> new_index(Space space, size_t dim, size_t capacity, size_t m,
                                size_t ef_construction, size_t seed) {
    auto s = make_space(space, dim);
    auto index = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        s.get(), capacity, m, ef_construction, seed, /*allow_replace_deleted=*/true);
    // Searches pass their width as k (searchKnn uses max(ef_, k)), so the
    // shared ef_ stays at its minimum and is never written while searching.
    index->setEf(1);
    return std::make_unique<Hnsw>(std::move(s), std::move(index));
}

std::unique_ptr<Hnsw> load_index(Space space, size_t dim, rust::Str path, size_t capacity) {
    auto s = make_space(space, dim);
    auto index = std::make_unique<hnswlib::HierarchicalNSW<float>>(
        s.get(), std::string(path), /*nmslib=*/false, capacity,
        /*allow_replace_deleted=*/true);
    index->setEf(1);
    return std::make_unique<Hnsw>(std::move(s), std::move(index));
}

void Hnsw::check_dim(rust::Slice<const float> v) const {
    if (v.size() * sizeof(float) != space_->get_data_size()) {
        throw std::invalid_argument("vector length does not match the index dimension");
    }
}

LabelState Hnsw::label_state(uint64_t label) const {
    std::unique_lock<std::mutex> lock(index_->label_lookup_lock);
    auto it = index_->label_lookup_.find(label);
    if (it == index_->label_lookup_.end()) return LabelState::Absent;
    return index_->isMarkedDeleted(it->second) ? LabelState::Deleted : LabelState::Live;
}

void Hnsw::unmark_deleted(uint64_t label) const { index_->unmarkDelete(label); }

void Hnsw::add_point(rust::Slice<const float> vector, uint64_t label, bool replace_deleted) const {
    check_dim(vector);
    index_->addPoint(vector.data(), label, replace_deleted);
}

void Hnsw::mark_deleted(uint64_t label) const { index_->markDelete(label); }

rust::Vec<float> Hnsw::get_vector(uint64_t label) const {
    std::vector<float> v = index_->getDataByLabel<float>(label);
    rust::Vec<float> out;
    out.reserve(v.size());
    for (float x : v) out.push_back(x);
    return out;
}

void Hnsw::resize(size_t new_max) const { index_->resizeIndex(new_max); }

rust::Vec<Hit> Hnsw::search(rust::Slice<const float> query, size_t width) const {
    check_dim(query);
    return to_hits(index_->searchKnn(query.data(), width));
}

size_t Hnsw::search_into(rust::Slice<const float> query, size_t width,
                         rust::Slice<Hit> out) const {
    check_dim(query);
    auto q = index_->searchKnn(query.data(), width);
    while (q.size() > out.size()) q.pop();  // drop the farthest
    size_t n = 0;
    for (; !q.empty(); q.pop()) out[n++] = Hit{q.top().second, q.top().first};
    return n;
}

rust::Vec<Hit> Hnsw::search_filtered(rust::Slice<const float> query, size_t width, uint64_t base,
                                     rust::Slice<const uint64_t> words,
                                     rust::Slice<const uint64_t> sorted, size_t budget,
                                     bool &gave_up) const {
    check_dim(query);
    gave_up = false;
    rust::Vec<Hit> out;
    const auto &ix = *index_;
    if (ix.cur_element_count == 0) return out;
    LabelFilter filter(base, words, sorted);
    // searchKnn's descent of the upper levels, as it is in hnswalg.h (its
    // searchStopConditionClosest returns slot numbers for labels).
    const void *q = query.data();
    hnswlib::tableint cur = ix.enterpoint_node_;
    float cur_d = ix.fstdistfunc_(q, ix.getDataByInternalId(cur), ix.dist_func_param_);
    for (int level = ix.maxlevel_; level > 0; level--) {
        bool changed = true;
        while (changed) {
            changed = false;
            unsigned int *data = (unsigned int *)ix.get_linklist(cur, level);
            int size = ix.getListCount(data);
            hnswlib::tableint *links = (hnswlib::tableint *)(data + 1);
            for (int i = 0; i < size; i++) {
                hnswlib::tableint c = links[i];
                if (c > ix.max_elements_) throw std::runtime_error("cand error");
                float d = ix.fstdistfunc_(q, ix.getDataByInternalId(c), ix.dist_func_param_);
                if (d < cur_d) {
                    cur_d = d;
                    cur = c;
                    changed = true;
                }
            }
        }
    }
    BudgetStop stop(width, budget);
    auto top = ix.searchBaseLayerST<false, false>(cur, q, width, &filter, &stop);
    if (stop.spent()) {
        gave_up = true;
        return out;
    }
    while (top.size() > width) top.pop();
    out.reserve(top.size());
    for (; !top.empty(); top.pop()) {
        out.push_back(Hit{ix.getExternalLabel(top.top().second), top.top().first});
    }
    return out;
}

// The scan of a filter's matches. Two passes, because both halves of a
// match's cost are cache misses: the label lookups run alone in the first
// (independent hash probes overlap only when nothing else fills the loop),
// and the second asks memory for each slot's row and deletion mark a few
// matches ahead of the one it scores. Only the k best leave C++. One
// pass doing both, returning every match, ran the bench's 1% filters at
// 2,220-2,947 QPS, 0.29-0.40x flat's scan; this runs them at 5,166-8,857,
// 0.79-0.93x (`vecsearch bench --filters --n 200000 --dim 96 --backends
// flat,hnswlib`, two alternated runs each).
rust::Vec<Hit> Hnsw::nearest_of(rust::Slice<const float> query,
                                rust::Slice<const uint64_t> labels, size_t k) const {
    check_dim(query);
    auto &ix = *index_;
    std::vector<std::pair<hnswlib::tableint, hnswlib::labeltype>> slots;
    slots.reserve(labels.size());
    {
        std::unique_lock<std::mutex> lock(ix.label_lookup_lock);
        // Labels added in order to an empty index sit in the slot of their
        // own number: one read of the slot's label, instead of a probe of
        // the hash map. A slot's stored label is always its label's slot
        // (reusing a slot erases the old label), and no add runs beside a
        // search (the Rust side's mode lock), so the read is exact.
        size_t count = ix.cur_element_count;
        for (uint64_t label : labels) {
            if (label < count) {
                auto own = static_cast<hnswlib::tableint>(label);
                if (ix.getExternalLabel(own) == label) {
                    slots.emplace_back(own, label);
                    continue;
                }
            }
            auto it = ix.label_lookup_.find(label);
            if (it != ix.label_lookup_.end()) slots.emplace_back(it->second, label);
        }
    }
    const size_t ahead = 8;
    auto ask = [&](hnswlib::tableint id) {
        // The mark sits in the level-0 list's header, the row after it.
        __builtin_prefetch(ix.get_linklist0(id));
        const char *row = ix.getDataByInternalId(id);
        for (size_t off = 0; off < ix.data_size_; off += 64) __builtin_prefetch(row + off);
    };
    for (size_t i = 0; i < ahead && i < slots.size(); i++) ask(slots[i].first);
    auto dist = ix.fstdistfunc_;
    void *param = ix.dist_func_param_;
    Best best;
    for (size_t i = 0; i < slots.size() && k > 0; i++) {
        if (i + ahead < slots.size()) ask(slots[i + ahead].first);
        auto [id, label] = slots[i];
        if (ix.isMarkedDeleted(id)) continue;
        keep(best, k, {dist(query.data(), ix.getDataByInternalId(id), param), label});
    }
    return to_hits(std::move(best));
}

rust::Vec<Hit> Hnsw::scan(rust::Slice<const float> query, size_t k, bool filtered, uint64_t base,
                          rust::Slice<const uint64_t> words, rust::Slice<const uint64_t> sorted) const {
    check_dim(query);
    LabelFilter allow(base, words, sorted);
    auto dist = index_->fstdistfunc_;
    void *param = index_->dist_func_param_;
    Best best;
    size_t n = index_->cur_element_count;
    for (size_t i = 0; i < n && k > 0; i++) {
        auto id = static_cast<hnswlib::tableint>(i);
        if (index_->isMarkedDeleted(id)) continue;
        hnswlib::labeltype label = index_->getExternalLabel(id);
        if (filtered && !allow(label)) continue;
        keep(best, k, {dist(query.data(), index_->getDataByInternalId(id), param), label});
    }
    return to_hits(std::move(best));
}

uint64_t Hnsw::search_loop(rust::Slice<const float> queries, size_t k) const {
    size_t dim = space_->get_data_size() / sizeof(float);
    if (dim == 0 || queries.size() % dim != 0) {
        throw std::invalid_argument("queries are not a whole number of vectors");
    }
    uint64_t sum = 0;
    for (size_t off = 0; off < queries.size(); off += dim) {
        auto r = index_->searchKnn(queries.data() + off, k);
        while (!r.empty()) {
            sum += r.top().second;
            r.pop();
        }
    }
    return sum;
}

void Hnsw::save(rust::Str path) const { index_->saveIndex(std::string(path)); }

size_t Hnsw::file_size() const { return index_->indexFileSize(); }

size_t Hnsw::element_count() const { return index_->cur_element_count; }

rust::Vec<uint64_t> Hnsw::labels() const {
    rust::Vec<uint64_t> out;
    size_t n = index_->cur_element_count;
    out.reserve(n);
    for (size_t i = 0; i < n; i++) {
        auto id = static_cast<hnswlib::tableint>(i);
        if (!index_->isMarkedDeleted(id)) out.push_back(index_->getExternalLabel(id));
    }
    return out;
}

size_t Hnsw::deleted_count() const { return index_->num_deleted_; }

size_t Hnsw::max_elements() const { return index_->max_elements_; }

size_t Hnsw::memory_bytes() const {
    const auto &h = *index_;
    size_t n = h.cur_element_count;
    size_t bytes = h.max_elements_ * h.size_data_per_element_  // level 0: links, vector, label
                   + h.max_elements_ * (sizeof(void *) + sizeof(int) + sizeof(std::mutex))
                   + h.max_elements_ * sizeof(hnswlib::vl_type)  // one visited list
                   + h.label_lookup_.size() * (sizeof(hnswlib::labeltype) + sizeof(hnswlib::tableint) + 2 * sizeof(void *))
                   + h.deleted_elements.size() * (sizeof(hnswlib::tableint) + 2 * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        int level = h.element_levels_[i];
        if (level > 0) bytes += h.size_links_per_element_ * static_cast<size_t>(level) + 1;
    }
    return bytes;
}

}  // namespace vecsearch
