// The C++ side of vecsearch-hnswlib: one class around
// hnswlib::HierarchicalNSW<float> and its space. Our code; the hnswlib
// headers come from the include directory build.rs found.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "rust/cxx.h"

namespace hnswlib {
template <typename T> class HierarchicalNSW;
template <typename T> class SpaceInterface;
}  // namespace hnswlib

namespace vecsearch {

struct Hit;
// Shared enums defined by the bridge (ffi.rs), both `#[repr(u8)]`.
enum class Space : uint8_t;
enum class LabelState : uint8_t;

class Hnsw {
  public:
    Hnsw(std::unique_ptr<hnswlib::SpaceInterface<float>> space,
         std::unique_ptr<hnswlib::HierarchicalNSW<float>> index);
    ~Hnsw();

    LabelState label_state(uint64_t label) const;
    void unmark_deleted(uint64_t label) const;
    void add_point(rust::Slice<const float> vector, uint64_t label, bool replace_deleted) const;
    void mark_deleted(uint64_t label) const;
    rust::Vec<float> get_vector(uint64_t label) const;
    void resize(size_t new_max) const;

    rust::Vec<Hit> search(rust::Slice<const float> query, size_t width) const;
    size_t search_into(rust::Slice<const float> query, size_t width, rust::Slice<Hit> out) const;
    rust::Vec<Hit> search_filtered(rust::Slice<const float> query, size_t width, uint64_t base,
                                   rust::Slice<const uint64_t> words,
                                   rust::Slice<const uint64_t> sorted, size_t budget,
                                   bool &gave_up) const;
    rust::Vec<Hit> nearest_of(rust::Slice<const float> query, rust::Slice<const uint64_t> labels,
                              size_t k) const;
    rust::Vec<Hit> scan(rust::Slice<const float> query, size_t k, bool filtered, uint64_t base,
                        rust::Slice<const uint64_t> words, rust::Slice<const uint64_t> sorted) const;
    uint64_t search_loop(rust::Slice<const float> queries, size_t k) const;

    void save(rust::Str path) const;
    size_t file_size() const;

    size_t element_count() const;
    size_t deleted_count() const;
    size_t max_elements() const;
    size_t memory_bytes() const;
    rust::Vec<uint64_t> labels() const;

  private:
    void check_dim(rust::Slice<const float> v) const;
    // Declared before the index: the index keeps a pointer into the space,
    // so the space must outlive it (members die in reverse order).
    std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
    std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
};

std::unique_ptr<Hnsw> new_index(Space space, size_t dim, size_t capacity, size_t m,
                                size_t ef_construction, size_t seed);
std::unique_ptr<Hnsw> load_index(Space space, size_t dim, rust::Str path, size_t capacity);

}  // namespace vecsearch
