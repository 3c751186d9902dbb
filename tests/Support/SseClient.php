<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * A real EventSource client (tests/js/sse-client.mjs, the `eventsource` npm
 * package, under node) on the sidecar's SSE listener. It reconnects by itself
 * and resumes with Last-Event-ID, as a browser does.
 */
final class SseClient
{
    private Process $process;
    private JsonLinesFile $out;

    /** @param list<string> $eventNames the named events to listen for (gap and overflow always) */
    public function __construct(string $dir, string $url, array $eventNames)
    {
        $this->out = JsonLinesFile::in($dir, 'sse-client');
        $this->process = new Process(['node', Processes::root() . '/tests/js/sse-client.mjs', '--url', $url,
            '--events', implode(',', $eventNames), '--out', $this->out->path], $this->out->path . '.log',
            ['NODE_PATH' => Processes::root() . '/tests/js/node_modules']);
        $this->waitOpen(1);
    }

    /** Waits until the stream has been opened $n times (reconnections count). */
    public function waitOpen(int $n, float $seconds = 20.0): void
    {
        Processes::waitFor(fn() => count($this->out->with('open')) >= $n, $seconds,
            "SSE stream opened $n times\n" . json_encode($this->out->with('error')) . "\n" . $this->process->output());
    }

    /** @return list<array{id:string,event:string,data:string,at_ms:int}> */
    public function events(): array
    {
        return $this->out->with('event');
    }

    /** Waits until at least $n events arrived. */
    public function waitFor(int $n, float $seconds = 20.0): array
    {
        Processes::waitFor(fn() => count($this->events()) >= $n, $seconds,
            "$n SSE events (have " . count($this->events()) . ")\n" . $this->process->output());
        return $this->events();
    }

    public function __destruct()
    {
        $this->process->kill();
    }
}
