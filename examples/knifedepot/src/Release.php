<?php

namespace App;

/**
 * Which code is running: every response carries it as `X-Code` (see
 * EventSubscriber\ReleaseCodeSubscriber). A new release changes it.
 */
final class Release
{
    public const CODE = 'code-1';
}
