// A small program against the real hnswlib 0.8.0 headers, used by
// tests/interop.rs to prove that files cross between hnswlib and
// vecsearch-hnswlib in both directions. Not part of the library.
//
//   hnswlib_tool build <vectors> <l2|ip> <dim> <M> <ef_construction> <out>
//       adds every (label, vector) of <vectors>, marks every label divisible
//       by 10 deleted, and saves with saveIndex.
//   hnswlib_tool query <index> <l2|ip> <dim> <queries> <k> <ef>
//       loads with loadIndex and prints, per query, its k labels, nearest first.
//
// <vectors>: u64 n, then n records of u64 label + dim f32. <queries>: u64 n,
// then n records of dim f32. Little-endian.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "hnswlib/hnswlib.h"

static std::unique_ptr<hnswlib::SpaceInterface<float>> space(const std::string &name, size_t dim) {
    if (name == "l2") return std::make_unique<hnswlib::L2Space>(dim);
    return std::make_unique<hnswlib::InnerProductSpace>(dim);
}

int main(int argc, char **argv) try {
    if (argc < 2) return 2;
    std::string mode = argv[1];
    if (mode == "build" && argc == 8) {
        size_t dim = std::stoul(argv[4]);
        auto s = space(argv[3], dim);
        std::ifstream in(argv[2], std::ios::binary);
        uint64_t n = 0;
        in.read(reinterpret_cast<char *>(&n), 8);
        hnswlib::HierarchicalNSW<float> index(s.get(), n, std::stoul(argv[5]), std::stoul(argv[6]));
        std::vector<float> v(dim);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t label = 0;
            in.read(reinterpret_cast<char *>(&label), 8);
            in.read(reinterpret_cast<char *>(v.data()), dim * 4);
            if (!in) return 3;
            index.addPoint(v.data(), label);
        }
        for (uint64_t label = 0; label < n; label += 10) index.markDelete(label);
        index.saveIndex(argv[7]);
        return 0;
    }
    if (mode == "query" && argc == 8) {
        size_t dim = std::stoul(argv[4]);
        auto s = space(argv[3], dim);
        hnswlib::HierarchicalNSW<float> index(s.get(), argv[2]);
        index.setEf(std::stoul(argv[7]));
        size_t k = std::stoul(argv[6]);
        std::ifstream in(argv[5], std::ios::binary);
        uint64_t n = 0;
        in.read(reinterpret_cast<char *>(&n), 8);
        std::vector<float> q(dim);
        for (uint64_t i = 0; i < n; i++) {
            in.read(reinterpret_cast<char *>(q.data()), dim * 4);
            if (!in) return 3;
            auto res = index.searchKnnCloserFirst(q.data(), k);
            for (auto &p : res) std::printf("%llu ", static_cast<unsigned long long>(p.second));
            std::printf("\n");
        }
        return 0;
    }
    return 2;
} catch (const std::exception &e) {
    std::cerr << "hnswlib_tool: " << e.what() << "\n";
    return 1;
}
