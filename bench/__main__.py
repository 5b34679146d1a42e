"""``make bench``: every benchmark, each printing its figures as ratios to an in-run baseline."""

from bench import bench_client, bench_replay, bench_throughput

if __name__ == "__main__":
    print("Benchmarks (figures vary with the machine; compare the ratios).")
    bench_client.main([])
    bench_throughput.main([])
    bench_replay.main([])
