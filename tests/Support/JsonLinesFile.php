<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * The JSON lines a node test client (tests/js/*) appends to its --out file,
 * read incrementally: what PusherClient and SseClient share.
 */
final class JsonLinesFile
{
    private int $offset = 0;
    /** @var list<array> */
    private array $lines = [];

    public function __construct(public readonly string $path)
    {
        touch($path);
    }

    /** In a directory, under a fresh name starting with $prefix. */
    public static function in(string $dir, string $prefix): self
    {
        return new self($dir . '/' . $prefix . '-' . bin2hex(random_bytes(4)) . '.jsonl');
    }

    /** @return list<array> every complete line so far */
    public function lines(): array
    {
        $data = (string)file_get_contents($this->path, false, null, $this->offset);
        $end = strrpos($data, "\n");
        if ($end !== false) {
            $this->offset += $end + 1;
            foreach (explode("\n", substr($data, 0, $end)) as $line) {
                $this->lines[] = json_decode($line, true);
            }
        }
        return $this->lines;
    }

    /** @return list<array> the lines that have $key */
    public function with(string $key): array
    {
        return array_values(array_filter($this->lines(), fn($l) => isset($l[$key])));
    }
}
