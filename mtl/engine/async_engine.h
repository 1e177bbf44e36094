// Asynchronous training (engine.mode: async), Hogwild!-style. Each batch is split into one shard per worker as
// in sync mode; each worker thread takes the next shard, computes that shard's share of the gradient on a
// private snapshot of the weights (a consistent read: the other workers' in-place updates cannot tear a
// forward/backward pass), and applies its update to the shared weights at once, without locks, through its
// own twin of the run's parameter groups (mtl/optim/param_groups.h: the same per-group learning rates,
// schedules and weight decay as sync, LibTorch's SGD) whose momentum buffers are shared by all workers and
// are the run's optimizer state (so checkpoints hold them). No worker waits for another: while the last
// shards of one batch are computed, the workers that are free start on the next batch (Engine::step keeps
// one batch queued). The price is stale gradients and lost updates, and results that depend on timing (not
// bitwise reproducible).
//
// Momentum with shard updates: each shard update decays the shared buffer by mu^share and moves by
// lr * (1 - mu^share) / (1 - mu) times the buffer, so that per batch the buffer decays by mu and, in steady
// state, the weights move as far as sync SGD moves them; with `lookahead`, each shard's gradient is taken at
// the weights advanced by the other workers' expected momentum steps (a DANA-style delay correction).
// Supports SGD and loss-based weighting without a post-step hook; L1/L2 penalties, clipping and max-norm
// constraints (whose per-shard meaning differs from sync) and models with BatchNorm buffers are refused at
// config load.
//
//   auto engine = mtl::make_async_engine(model, tasks, weighting, groups, options, make_replica);
//   for (auto& r : engine->step(batch, ctx)) observe(r);   ...   for (auto& r : engine->finish()) observe(r);
#pragma once

#include "mtl/engine/engine.h"

namespace mtl {

/// `groups` must use SGD; `make_replica` builds the workers' private weight snapshots.
std::unique_ptr<Engine> make_async_engine(MultiTaskModel model, const std::vector<TaskSpec>& tasks,
                                          Weighting& weighting, ParamGroups& groups, EngineOptions options,
                                          ModelFactory make_replica);

}  // namespace mtl
