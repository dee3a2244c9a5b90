"""Plugin method: FedBuff-style buffered asynchronous SGD (Nguyen et al., AISTATS 2022).

Every worker computes gradients at whatever point it last received and never waits. The
server adds each arriving gradient to a buffer, weighted by 1/sqrt(1 + delay) (delay: steps
since the gradient's point), and after `buffer` gradients steps with the buffer's mean.
"""

import asyncopt_mpi as ao


@ao.register_method
class FedBuff(ao.Method):
    name = "fedbuff"
    description = "buffers K gradients weighted by 1/sqrt(1+delay), then steps with their mean"
    paper = "Nguyen et al., Federated learning with buffered asynchronous aggregation, AISTATS 2022"
    params = {"buffer": 4}  # method.buffer = K

    @classmethod
    def check_options(cls, options):
        if options["buffer"] < 1:
            raise ao.ConfigError(f"method.buffer: must be >= 1, got {options['buffer']}")

    def start(self, server):
        self.sum, self.count, self.grads, self.oldest = server.vector_sum(), 0, 0, 0
        for worker in range(server.n_workers):
            server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))

    def on_result(self, server, worker, result):
        self.sum.add(result, weight=(1 + result.delay) ** -0.5)
        self.count, self.grads, self.oldest = self.count + 1, self.grads + result.n_grads, max(self.oldest, result.delay)
        if self.count == self.options["buffer"]:
            server.step(self.sum, self.lr / self.count, grads_used=self.grads, max_delay=self.oldest)
            self.sum.clear()
            self.count, self.grads, self.oldest = 0, 0, 0
        server.assign(worker, ao.Job(ao.JobKind.GRAD, server.version, self.batch))
        return True
