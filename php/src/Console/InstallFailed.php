<?php

namespace Scada\Broadcasting\Console;

/** A step of scada:install that could not be done: the command says why and exits non-zero. */
final class InstallFailed extends \RuntimeException
{
}
