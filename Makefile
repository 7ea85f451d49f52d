# The two commands of the README: `make run` and `make test`. Both install what is
# missing first (scripts/install-deps.sh), so a fresh Debian 12 machine needs nothing else.
JOBS    ?= $(shell nproc)
CMAKE   ?= cmake
RELEASE := build/release
ASAN    := build/asan
BENCH   := build/bench
FUZZDIR := build/fuzz
FUZZ_SECONDS ?= 30

.PHONY: all deps build run test test-release test-asan bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh

$(RELEASE)/CMakeCache.txt:
	$(CMAKE) -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release -DWERROR=ON

$(ASAN)/CMakeCache.txt:
	$(CMAKE) -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DWERROR=ON -DASAN=ON -DUBSAN=ON

build: deps $(RELEASE)/CMakeCache.txt
	$(CMAKE) --build $(RELEASE) -j $(JOBS)

run: build
	@scripts/run-dev.sh $(RELEASE)/engine/idmint

# Optimized first, then ASan+UBSan; every test runs in both.
test: deps test-release test-asan

test-release: $(RELEASE)/CMakeCache.txt
	$(CMAKE) --build $(RELEASE) -j $(JOBS)
	cd $(RELEASE) && ctest --output-on-failure -j $(JOBS)

test-asan: $(ASAN)/CMakeCache.txt
	$(CMAKE) --build $(ASAN) -j $(JOBS)
	cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

bench: deps
	$(CMAKE) -S . -B $(BENCH) -DCMAKE_BUILD_TYPE=Release -DBUILD_BENCH=ON -DBUILD_TESTS=OFF
	$(CMAKE) --build $(BENCH) -j $(JOBS)
	scripts/bench.sh $(BENCH)

fuzz: deps
	CC=clang CXX=clang++ $(CMAKE) -S . -B $(FUZZDIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFUZZ=ON -DASAN=ON -DUBSAN=ON -DWERROR=ON -DBUILD_TESTS=OFF
	$(CMAKE) --build $(FUZZDIR) -j $(JOBS)
	scripts/fuzz.sh $(FUZZDIR) $(FUZZ_SECONDS)

clean:
	rm -rf build
