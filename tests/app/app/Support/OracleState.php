<?php

namespace App\Support;

/** A JsonSerializable value object, as apps put in payloads. */
class OracleState implements \JsonSerializable
{
    public function __construct(private string $name, private float $value)
    {
    }

    public function jsonSerialize(): array
    {
        return ['state' => $this->name, 'value' => $this->value, 'ratio' => $this->value / 3];
    }
}
